//! The XDP objects built by `build.rs`, embedded in the binary.

/// ELF object holding the `xlb` load-balancing program.
pub static XLB: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xlb"));

/// ELF object holding the `xlb_decap` backend-side program.
pub static XLB_DECAP: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xlb_decap"));

/// ELF object holding the trivial `xlb_pass` and `xlb_tx` programs: the
/// benchmarks' baselines and the XDP receiver a veth peer needs.
pub static XLB_BASELINE: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xlb_baseline"));

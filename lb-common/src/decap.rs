//! Types of `xlb_decap`, the backend-side decapsulation program.

/// Most addresses one `xlb_decap` decapsulates for (entries of
/// `DECAP_ADDRS`).
pub const MAX_DECAP_ADDRS: u32 = 64;

/// Key of `DECAP_ADDRS`: an outer destination address this host
/// decapsulates for.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DecapKey {
    /// Address, network order; IPv4 in bytes 0..4.
    pub addr: [u8; 16],
    /// `FAMILY_V4` or `FAMILY_V6`.
    pub family: u8,
    /// Always zero.
    pub _pad: [u8; 3],
}
const _: () = assert!(core::mem::size_of::<DecapKey>() == 20);

/// What `xlb_decap` did with a packet, indexing the per-CPU `DECAP_STATS`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecapStat {
    /// Outer header stripped, inner packet passed to the stack.
    Decapsulated = 0,
    /// Not an encapsulated packet for one of our addresses: passed untouched.
    Passed,
    /// Encapsulated for us but the outer header is cut short or invalid:
    /// dropped.
    DropBadOuter,
    /// Encapsulated for us but the inner header is cut short, of the wrong
    /// version for the outer protocol, or invalid: dropped.
    DropBadInner,
    /// `bpf_xdp_adjust_head` failed: dropped.
    DropAdjustFailed,
}

impl DecapStat {
    /// Every counter, in index order.
    pub const ALL: [DecapStat; 5] = [
        DecapStat::Decapsulated,
        DecapStat::Passed,
        DecapStat::DropBadOuter,
        DecapStat::DropBadInner,
        DecapStat::DropAdjustFailed,
    ];

    /// Entries in the `DECAP_STATS` array.
    pub const COUNT: u32 = Self::ALL.len() as u32;

    /// Short snake-case reason for metrics and the CLI.
    pub const fn reason(self) -> &'static str {
        match self {
            DecapStat::Decapsulated => "decapsulated",
            DecapStat::Passed => "passed",
            DecapStat::DropBadOuter => "bad_outer",
            DecapStat::DropBadInner => "bad_inner",
            DecapStat::DropAdjustFailed => "adjust_failed",
        }
    }
}

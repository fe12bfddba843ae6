//! A network-namespace testbed for xlb: a client, a router, the LB node and
//! HTTP/UDP backends on one bridge, each in its own namespace.
//!
//! ```text
//! P-cl ── P-rt ── P-sw(br0) ┬─ P-lb   (xlbd attaches XDP to eth0)
//!                           ├─ P-b1   (xlb-backend, VIPs on lo)
//!                           └─ P-bN
//! ```
//!
//! The router sends the VIP ranges to the LB; backends hold every VIP on
//! `lo` and answer the client directly (direct server return).
//!
//! Two stand-ins for a physical wire: the LB's switch port runs the
//! trivial XDP program `xlb_pass`, without which Linux 6.18 drops the
//! LB's `XDP_TX` frames on the veth; and the router fills in TCP and UDP
//! checksums (iptables `CHECKSUM --checksum-fill`) that the client's veth
//! leaves partial, which `XDP_TX` would otherwise send on unfinished. `plan` fixes
//! every address and MAC; `Testbed::new` builds it all in fresh namespaces
//! named with a unique prefix, and dropping the `Testbed` (or Ctrl-C) tears
//! it down. Needs root.
//!
//! ```no_run
//! use xlb_testbed::{Testbed, TestbedOptions, plan};
//!
//! let testbed = Testbed::new(TestbedOptions { backends: 2, ..Default::default() })?;
//! let body = testbed.http_get(plan::backend_socket_v4(1, 80))?;
//! assert_eq!(body, "backend b1\n");
//! # anyhow::Ok(())
//! ```

mod backends;
pub mod bins;
mod client;
pub mod names;
pub mod netns;
pub mod plan;
mod process;
mod receiver;
mod registry;
pub mod shares;
mod testbed;
mod topology;
mod traffic;
mod xlbd;
pub mod xlbd_config;

pub use client::{KeepAliveConn, MAX_ERRORS_KEPT, REQUEST_TIMEOUT, RequestStats};
pub use process::Process;
pub use registry::{StaleCleanup, cleanup_stale, teardown_all};
pub use testbed::{BackendSetup, Testbed, TestbedOptions};
pub use topology::Namespaces;
pub use xlbd::{Counters, XLBD_READY_TIMEOUT, XLBD_RELOAD_TIMEOUT, Xlbd, read_counters};

#[cfg(test)]
mod tests {
    #[test]
    fn testbed_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<crate::Testbed>();
        assert_send_sync::<crate::Process>();
        assert_send_sync::<crate::KeepAliveConn>();
    }
}

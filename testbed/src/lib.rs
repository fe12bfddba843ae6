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
//! `lo` and answer the client directly (direct server return). `plan` fixes
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
mod registry;
mod testbed;
mod topology;
mod traffic;

pub use client::{KeepAliveConn, MAX_ERRORS_KEPT, REQUEST_TIMEOUT, RequestStats};
pub use process::Process;
pub use registry::{StaleCleanup, cleanup_stale, teardown_all};
pub use testbed::{BackendSetup, Testbed, TestbedOptions};
pub use topology::Namespaces;

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

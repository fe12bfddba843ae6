//! What the end-to-end tests share: a testbed with decapsulation on every
//! backend, and xlbd started on it with a config rendered from the plan.
//!
//! xlbd is located like the testbed locates it (`bins::locate`): beside
//! the test binary's profile directory, so `cargo test --workspace` (or
//! `cargo build`) must have built it.

#![allow(dead_code, reason = "each test binary uses a part of this module")]

use std::path::PathBuf;

use xlb_testbed::xlbd_config::{BackendSpec, XlbdConfig};
use xlb_testbed::{Testbed, TestbedOptions, Xlbd, plan};

/// A testbed with `backends` backend servers and `xlb_decap` attached on
/// each (by `xlbd decap`).
pub fn testbed(backends: usize) -> Testbed {
    Testbed::new(TestbedOptions {
        backends,
        backend_bin: Some(PathBuf::from(env!("CARGO_BIN_EXE_xlb-backend"))),
        attach_decap: true,
        ..Default::default()
    })
    .expect("testbed with decap on every backend builds")
}

/// Starts xlbd with `config`, panicking with its log when it fails.
pub fn start_xlbd(testbed: &Testbed, config: &XlbdConfig) -> Xlbd {
    testbed
        .start_xlbd(&config.render())
        .unwrap_or_else(|err| panic!("xlbd starts: {err:#}"))
}

/// The (backend name, weight) pairs of `backends`, for share checks.
pub fn weights(backends: &[(usize, u32)]) -> Vec<(String, u32)> {
    backends
        .iter()
        .map(|(k, w)| (plan::backend_name(*k), *w))
        .collect()
}

/// IPv4 backend specs for (k, weight) pairs.
pub fn v4_backends(backends: &[(usize, u32)]) -> Vec<BackendSpec> {
    backends
        .iter()
        .map(|(k, w)| BackendSpec::v4(*k, *w))
        .collect()
}

/// IPv6 backend specs for (k, weight) pairs.
pub fn v6_backends(backends: &[(usize, u32)]) -> Vec<BackendSpec> {
    backends
        .iter()
        .map(|(k, w)| BackendSpec::v6(*k, *w))
        .collect()
}

/// The backend number in a reply like "backend b2\n".
pub fn backend_of(reply: &str) -> usize {
    reply
        .trim()
        .strip_prefix("backend b")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("reply {reply:?} names no backend"))
}

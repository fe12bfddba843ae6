//! Maglev figures: how long `build_table` takes, how evenly it divides the
//! slots, and how many flows move when one backend leaves or one weight
//! changes by 10%.
//!
//! A flow's backend is its slot's backend, and flows spread evenly over the
//! slots, so "share of flows moved" is the share of slots whose backend
//! changed. Slots are compared by backend address, since indices shift when
//! a backend leaves.

use std::{net::IpAddr, time::Instant};

use anyhow::Context as _;
use serde::Serialize;
use xlb::maglev::{MaglevBackend, build_table, slot_shares};

/// Backend counts measured.
pub const BACKENDS: [u32; 3] = [10, 100, 1000];
/// Table sizes measured (primes); only the first fits the kernel's
/// `MAX_TABLE_SIZE`, the second is for the user-space generator alone.
pub const SIZES: [u32; 2] = [65_537, 655_373];
/// Builds timed per figure; the report gives their median.
const BUILDS: usize = 5;
/// Weight of every backend before one changes.
const WEIGHT: u32 = 100;

/// One line of the Maglev report.
#[derive(Clone, Debug, Serialize)]
pub struct MaglevRow {
    /// Backends in the table.
    pub backends: u32,
    /// Slots in the table.
    pub table_size: u32,
    /// Median time of one `build_table`, in ms.
    pub build_ms: f64,
    /// Largest backend share over the mean share (1.0 is perfect).
    pub balance: f64,
    /// Share of flows that change backend when one backend leaves.
    pub moved_on_removal: f64,
    /// What removal must move at least: the leaving backend's share.
    pub removal_ideal: f64,
    /// Share of flows that change backend when one weight grows by 10%.
    pub moved_on_weight_change: f64,
}

/// Measures every (backends, size) pair.
///
/// # Errors
///
/// Fails when a table cannot be built.
pub fn run() -> anyhow::Result<Vec<MaglevRow>> {
    let mut rows = Vec::new();
    for &n in &BACKENDS {
        for &size in &SIZES {
            rows.push(measure(n, size)?);
        }
    }
    Ok(rows)
}

fn measure(n: u32, size: u32) -> anyhow::Result<MaglevRow> {
    let backends: Vec<MaglevBackend> = (0..n)
        .map(|i| MaglevBackend {
            addr: backend_addr(i),
            weight: WEIGHT,
        })
        .collect();
    let build = |b: &[MaglevBackend]| {
        build_table(b, size).with_context(|| format!("maglev table of {size} slots"))
    };

    let mut times_ms = Vec::with_capacity(BUILDS);
    let mut table = Vec::new();
    for _ in 0..BUILDS {
        let started = Instant::now();
        table = build(&backends)?;
        times_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }

    let shares = slot_shares(&table, &backends);
    let max = shares.iter().map(|s| s.slots).max().unwrap_or(0);
    let mean = f64::from(size) / f64::from(n);

    let leaver = n as usize / 2;
    let mut fewer = backends.clone();
    fewer.remove(leaver);
    let after_removal = build(&fewer)?;

    let mut reweighted = backends.clone();
    reweighted[leaver].weight = WEIGHT + WEIGHT / 10;
    let after_weight = build(&reweighted)?;

    Ok(MaglevRow {
        backends: n,
        table_size: size,
        build_ms: crate::measure::median(&times_ms),
        balance: f64::from(max) / mean,
        moved_on_removal: moved(&table, &backends, &after_removal, &fewer),
        removal_ideal: f64::from(shares[leaver].slots) / f64::from(size),
        moved_on_weight_change: moved(&table, &backends, &after_weight, &reweighted),
    })
}

/// Backend `i`'s address: 10.x.y.z, distinct for every `i` below 2^24.
fn backend_addr(i: u32) -> IpAddr {
    let [_, a, b, c] = (i + 1).to_be_bytes();
    IpAddr::from([10, a, b, c])
}

/// Share of slots whose backend address differs between two tables.
fn moved(
    before: &[u32],
    before_backends: &[MaglevBackend],
    after: &[u32],
    after_backends: &[MaglevBackend],
) -> f64 {
    let addr = |backends: &[MaglevBackend], i: u32| backends.get(i as usize).map(|b| b.addr);
    let changed = before
        .iter()
        .zip(after)
        .filter(|&(&b, &a)| addr(before_backends, b) != addr(after_backends, a))
        .count();
    changed as f64 / before.len() as f64
}

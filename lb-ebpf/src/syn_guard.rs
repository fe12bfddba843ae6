//! The SYN guard: a per-CPU budget of new flows that SYNs may enter in
//! `FLOWS`.
//!
//! `FLOWS` is an LRU map, so every insert into a full table evicts the
//! least recently used flow, established or not. A flood of spoofed SYNs
//! would thus push out live connections. Past the budget, a SYN is steered
//! by the Maglev table alone; its connection's next packet (the client's
//! ACK) enters the flow as any untracked flow does, so only handshakes that
//! complete cost an insert.
//!
//! The budget is a generic cell rate algorithm (GCRA), the token bucket
//! kept as one timestamp: `SYN_GUARD` holds the time at which the bucket
//! is full again. Each admitted SYN moves it one interval (`1 s / rate`)
//! later; a SYN is refused while it is more than `burst - 1` intervals
//! ahead of now.

use lb_common::Settings;

use crate::{flow::now_ns, maps::SYN_GUARD};

/// Nanoseconds in a second.
const NS_PER_S: u64 = 1_000_000_000;

/// Takes one new flow from this CPU's budget: false when it is spent.
/// Always true while the guard is off (`new_flows_per_s == 0`).
#[inline(always)]
pub fn admit_new_flow(settings: &Settings) -> bool {
    let Some(full_at) = SYN_GUARD.get_ptr_mut(0) else {
        return true;
    };
    take_token(full_at, settings.new_flows_per_s, settings.new_flow_burst)
}

/// Takes one token of the GCRA bucket whose clock is `full_at` (a per-CPU
/// map value) at `per_s` tokens a second and a depth of `burst`: false when
/// the bucket is empty. Always true with `per_s == 0` (no limit). The
/// tenant limits (`policy`) use the same bucket.
#[inline(always)]
pub fn take_token(full_at: *mut u64, per_s: u32, burst: u32) -> bool {
    let Some(interval_ns) = NS_PER_S.checked_div(u64::from(per_s)) else {
        return true;
    };
    let burst = u64::from(burst.max(1));
    let tolerance_ns = interval_ns.saturating_mul(burst - 1);

    let now = now_ns();
    // SAFETY: `full_at` points at a per-CPU map value, and XDP runs with
    // preemption off, so nothing else writes this CPU's slot meanwhile.
    let next = unsafe { *full_at }.max(now);
    if next - now > tolerance_ns {
        return false;
    }
    // SAFETY: as above.
    unsafe { *full_at = next + interval_ns };
    true
}

//! Step 3: chooses the backend: the tracked flow's, or the Maglev table's.
//!
//! A tracked flow keeps its backend across table changes unless that
//! backend is down. A TCP SYN without ACK starts a new connection, even on
//! a 5-tuple still in the table (clients reuse ports), so it follows the
//! live table: a draining backend gets no new connection, and a weight
//! change reaches reused tuples too. Fragments are not tracked: they are
//! hashed on their addresses, statelessly, so every fragment of a datagram
//! meets the same slot. A SYN beyond the CPU's new-flow budget (see
//! `syn_guard`) enters no flow: it is steered by the table alone.

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_ktime_get_coarse_ns};
use lb_common::{
    BACKEND_F_UP, Backend, FLOW_TOUCH_INTERVAL_NS, Flow, FlowKey, MAX_TABLE_SIZE, Stat, Vip,
    flow_hash, hash::HashInput,
};

use crate::{
    maps::{self, BACKENDS, FLOWS, MAGLEV},
    syn_guard,
};

/// The backend picked for a packet.
#[derive(Clone, Copy)]
pub struct Choice {
    /// Index in `BACKENDS`.
    pub backend_id: u32,
    /// The backend itself.
    pub backend: Backend,
    /// The flow hash, also spread over the outer source address.
    pub hash: u32,
    /// The packet created a `FLOWS` entry.
    pub new_flow: bool,
    /// A SYN over the new-flow budget, steered without a `FLOWS` entry.
    pub guarded: bool,
    /// The packet's flow was entered in `FLOWS` (an insert succeeded).
    pub inserted: bool,
}

/// Picks the backend for `key` at `vip`, tracking the flow in `FLOWS`
/// unless `track` is false.
#[inline(always)]
pub fn select_backend(
    key: &FlowKey,
    vip: &Vip,
    input: HashInput,
    syn: bool,
    track: bool,
) -> Result<Choice, Stat> {
    let hash = flow_hash(key, input);
    if !track {
        return maglev_choice(vip, hash, false);
    }
    if syn {
        if maps::settings().is_none_or(syn_guard::admit_new_flow) {
            return start_connection(key, vip, hash);
        }
        return guarded_connection(key, vip, hash);
    }
    match FLOWS.get_ptr_mut(key) {
        Some(flow) => tracked_choice(flow, vip, hash, false),
        None => track_new_flow(key, vip, hash),
    }
}

/// A SYN: enters the flow with one insert that fails on a tuple still
/// tracked, instead of a lookup that misses and then the insert. Only a
/// reused tuple pays for the lookup after all, and is re-steered in place.
#[inline(always)]
fn start_connection(key: &FlowKey, vip: &Vip, hash: u32) -> Result<Choice, Stat> {
    let mut picked = maglev_choice(vip, hash, true)?;
    let flow = Flow {
        backend_id: picked.backend_id,
        vip_id: vip.id,
        last_seen_ns: now_ns(),
    };
    // Limitation: the kernel takes a free entry (evicting, when full)
    // before it finds the key present, so a reused tuple costs one
    // eviction; a failed insert otherwise only means the next packet of
    // the flow is scheduled again.
    match FLOWS.insert(key, &flow, u64::from(BPF_NOEXIST)) {
        Err(EEXIST_NEG) => match FLOWS.get_ptr_mut(key) {
            Some(tracked) => tracked_choice(tracked, vip, hash, true),
            None => Ok(picked),
        },
        inserted => {
            picked.inserted = inserted.is_ok();
            Ok(picked)
        }
    }
}

/// A SYN over the budget: re-steers its tuple in place if it is still
/// tracked (no insert, so no eviction), else picks the Maglev backend
/// without tracking it.
#[inline(always)]
fn guarded_connection(key: &FlowKey, vip: &Vip, hash: u32) -> Result<Choice, Stat> {
    if let Some(tracked) = FLOWS.get_ptr_mut(key) {
        return tracked_choice(tracked, vip, hash, true);
    }
    let mut picked = maglev_choice(vip, hash, false)?;
    picked.guarded = true;
    Ok(picked)
}

/// `-EEXIST`, as `bpf_map_update_elem` returns it for `BPF_NOEXIST`.
const EEXIST_NEG: i32 = -17;

/// The backend a lookup-only user (ICMP steering) would send `key` to:
/// the tracked one if any and up, else the Maglev one. Nothing is written.
#[inline(always)]
pub fn peek_backend(key: &FlowKey, vip: &Vip, input: HashInput) -> Result<Choice, Stat> {
    let hash = flow_hash(key, input);
    // SAFETY: `Flow` is plain data; a torn read picks a valid backend id.
    if let Some(flow) = unsafe { FLOWS.get(key) } {
        if let Some(backend) = tracked_backend(flow.backend_id, vip) {
            return Ok(choice(flow.backend_id, backend, hash, false));
        }
    }
    maglev_choice(vip, hash, false)
}

/// Keeps the tracked backend, or re-steers the entry: for a SYN, or when
/// the backend is down or serves another VIP now.
#[inline(always)]
fn tracked_choice(flow: *mut Flow, vip: &Vip, hash: u32, syn: bool) -> Result<Choice, Stat> {
    // SAFETY: `flow` points at a live `FLOWS` value; this CPU is its only
    // writer for this packet, and racing writers store whole valid flows.
    let id = unsafe { (*flow).backend_id };
    if !syn && let Some(backend) = tracked_backend(id, vip) {
        touch(flow);
        return Ok(choice(id, backend, hash, false));
    }
    // A SYN starts a new connection on a reused tuple and is counted as a
    // new flow; a flow moved off a down backend is not.
    let picked = maglev_choice(vip, hash, syn)?;
    // SAFETY: as above.
    unsafe {
        (*flow).backend_id = picked.backend_id;
        (*flow).vip_id = vip.id;
        (*flow).last_seen_ns = now_ns();
    }
    Ok(picked)
}

/// Schedules a flow seen for the first time and enters it in `FLOWS`.
#[inline(always)]
fn track_new_flow(key: &FlowKey, vip: &Vip, hash: u32) -> Result<Choice, Stat> {
    let mut picked = maglev_choice(vip, hash, true)?;
    let flow = Flow {
        backend_id: picked.backend_id,
        vip_id: vip.id,
        last_seen_ns: now_ns(),
    };
    // A full LRU map evicts; a failed insert only means the next packet of
    // the flow is scheduled again (to the same slot while the table holds).
    picked.inserted = FLOWS.insert(key, &flow, 0).is_ok();
    Ok(picked)
}

/// Refreshes `last_seen_ns` at most once per `FLOW_TOUCH_INTERVAL_NS`.
#[inline(always)]
fn touch(flow: *mut Flow) {
    let now = now_ns();
    // SAFETY: `flow` points at a live `FLOWS` value (see `tracked_choice`).
    unsafe {
        if now.wrapping_sub((*flow).last_seen_ns) > FLOW_TOUCH_INTERVAL_NS {
            (*flow).last_seen_ns = now;
        }
    }
}

/// The coarse monotonic clock, in ns: `CLOCK_MONOTONIC_COARSE`, which
/// lags `CLOCK_MONOTONIC` by at most a tick and costs no clock-source read
/// (`bpf_ktime_get_coarse_ns`, Linux 5.11+). Flow ages are measured in
/// seconds, so a tick does not matter.
#[inline(always)]
pub fn now_ns() -> u64 {
    // SAFETY: no preconditions.
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// The backend in slot `hash % table_size` of the VIP's live table.
#[inline(always)]
fn maglev_choice(vip: &Vip, hash: u32, new_flow: bool) -> Result<Choice, Stat> {
    if vip.table_size == 0 || vip.table_size > MAX_TABLE_SIZE {
        return Err(Stat::DropNoBackend);
    }
    let slot = vip.table_base() + hash % vip.table_size;
    let id = *MAGLEV.get(slot).ok_or(Stat::DropNoBackend)?;
    let backend = usable_backend(id).ok_or(Stat::DropNoBackend)?;
    Ok(choice(id, backend, hash, new_flow))
}

/// Backend `id` if it exists and is up (`NO_BACKEND` is out of range).
#[inline(always)]
fn usable_backend(id: u32) -> Option<Backend> {
    BACKENDS
        .get(id)
        .copied()
        .filter(|b| b.flags & BACKEND_F_UP != 0)
}

/// Backend `id` if it is up and still serves `vip`: user space reuses the
/// ids of removed backends, so an old flow must not follow its id to
/// another VIP's backend.
#[inline(always)]
fn tracked_backend(id: u32, vip: &Vip) -> Option<Backend> {
    usable_backend(id).filter(|b| b.vip_id == vip.id)
}

#[inline(always)]
fn choice(backend_id: u32, backend: Backend, hash: u32, new_flow: bool) -> Choice {
    Choice {
        backend_id,
        backend,
        hash,
        new_flow,
        guarded: false,
        inserted: false,
    }
}

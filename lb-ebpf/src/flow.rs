//! Step 4: chooses the backend: the tracked flow's, or a new flow's by the
//! routing policy (`policy`) and the Maglev table.
//!
//! A tracked flow keeps its backend across table changes unless that
//! backend is down; then it is re-steered inside the table (pool) it was
//! scheduled in, which its `FLOWS` entry names. A TCP SYN without ACK
//! starts a new connection, even on a 5-tuple still in the table (clients
//! reuse ports), so it follows the policy and the live table: a draining
//! backend gets no new connection, and a weight change reaches reused
//! tuples too. Fragments are not tracked: they are
//! hashed on their addresses, statelessly, so every fragment of a datagram
//! meets the same slot. A SYN beyond the CPU's new-flow budget (see
//! `syn_guard`) enters no flow: it is steered by the table alone.

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_ktime_get_coarse_ns};
use lb_common::{
    BACKEND_F_UP, Backend, FLOW_TOUCH_INTERVAL_NS, Flow, FlowKey, MAX_TABLE_SIZE, PROTO_UDP, Stat,
    Vip, flow_hash, hash::HashInput,
};

use crate::{
    maps::{self, BACKENDS, FLOWS, MAGLEV},
    policy::{self, Rules},
    syn_guard,
};

/// The backend picked for a packet.
#[derive(Clone, Copy)]
pub struct Choice {
    /// Index in `BACKENDS`.
    pub backend_id: u32,
    /// The backend itself.
    pub backend: Backend,
    /// The table the backend was picked in (`Flow::vip_id`), whose
    /// `VIP_STATS` entry counts the packet.
    pub table_id: u32,
    /// The flow hash, also spread over the outer source address.
    pub hash: u32,
    /// The packet created a `FLOWS` entry.
    pub new_flow: bool,
    /// A SYN over the new-flow budget, steered without a `FLOWS` entry.
    pub guarded: bool,
    /// The packet's flow was entered in `FLOWS` (an insert succeeded).
    pub inserted: bool,
}

/// Picks the backend for `key` at `vip` (whose source rules `rules` the
/// screening step may have read), tracking the flow in `FLOWS` unless
/// `track` is false.
///
/// Every flow that needs scheduling meets the policy at one place, so the
/// verifier walks it once: a new flow, a SYN on a reused tuple, a guarded
/// SYN, an untracked fragment, and a tracked flow whose table is gone.
#[inline(always)]
pub fn select_backend(
    key: &FlowKey,
    vip: &Vip,
    input: HashInput,
    rules: Rules,
    syn: bool,
    track: bool,
) -> Result<Choice, Stat> {
    let hash = flow_hash(key, input);
    let mut entry = None;
    if track
        && !syn
        && let Some(flow) = FLOWS.get_ptr_mut(key)
    {
        if let Some(kept) = follow_tracked(flow, vip, hash)? {
            return Ok(kept);
        }
        entry = Some(flow);
    }

    // A SYN, or a UDP packet without a flow, starts one and pays its
    // tenant's budget; a TCP packet without SYN belongs to a connection
    // that started before (evicted, steered by the SYN guard, or moved
    // from another LB node), which a tenant limit must not break.
    let charge = syn || (track && entry.is_none() && key.proto == PROTO_UDP);
    let steer = policy::admit(key, vip, rules, charge)?;

    // A SYN over the SYN guard's budget is tracked only on a tuple that
    // already is (re-steered in place: no insert, so no eviction).
    let mut guarded = false;
    if syn && !maps::settings().is_none_or(syn_guard::admit_new_flow) {
        entry = FLOWS.get_ptr_mut(key);
        guarded = entry.is_none();
    }

    let new_flow = track && !guarded && (syn || entry.is_none());
    let mut picked = policy::schedule(vip, steer, hash, new_flow)?;
    picked.guarded = guarded;
    match entry {
        Some(flow) => restart(flow, &picked),
        None if track && !guarded => picked.inserted = enter_flow(key, &picked, syn),
        None => {}
    }
    Ok(picked)
}

/// Enters `picked` as `key`'s flow; true when the insert succeeded.
///
/// A SYN inserts with `BPF_NOEXIST`, which fails on a tuple still tracked,
/// instead of a lookup that misses and then the insert: only a reused
/// tuple pays for the lookup after all, and is re-steered in place.
#[inline(always)]
fn enter_flow(key: &FlowKey, picked: &Choice, syn: bool) -> bool {
    let flow = Flow {
        backend_id: picked.backend_id,
        vip_id: picked.table_id,
        last_seen_ns: now_ns(),
    };
    let flags = if syn { u64::from(BPF_NOEXIST) } else { 0 };
    // Limitation: the kernel takes a free entry (evicting, when full)
    // before it finds the key present, so a reused tuple costs one
    // eviction. A full LRU map evicts; a failed insert only means the next
    // packet of the flow is scheduled again (to the same slot while the
    // table holds).
    match FLOWS.insert(key, &flow, flags) {
        Err(EEXIST_NEG) => {
            if let Some(tracked) = FLOWS.get_ptr_mut(key) {
                restart(tracked, picked);
            }
            false
        }
        inserted => inserted.is_ok(),
    }
}

/// `-EEXIST`, as `bpf_map_update_elem` returns it for `BPF_NOEXIST`.
const EEXIST_NEG: i32 = -17;

/// The backend a lookup-only user (ICMP steering) would send `key` to:
/// the tracked one if any and up, else the service table's (or its
/// fallback's). Nothing is written.
#[inline(always)]
pub fn peek_backend(key: &FlowKey, vip: &Vip, input: HashInput) -> Result<Choice, Stat> {
    let hash = flow_hash(key, input);
    // SAFETY: `Flow` is plain data; a torn read picks a valid backend id.
    if let Some(flow) = unsafe { FLOWS.get(key) } {
        let (id, table_id) = (flow.backend_id, flow.vip_id);
        if let Some(backend) = tracked_backend(id, table_id)
            && policy::keeps_table(table_id, vip)
        {
            return Ok(choice(id, backend, table_id, hash, false));
        }
    }
    // Limitation: an error about a flow that is not tracked (or whose
    // backend is down) skips the source rules and the canary split, which
    // a new flow of that tuple would follow; walking them here as well
    // cost the verifier ~70k more instructions, for errors about flows
    // this node has not tracked (evicted, or never seen).
    policy::pick(vip, hash, false)
}

/// A tracked flow's backend, kept; or, when it is down, another in the
/// table (pool) the flow was scheduled in. `None` when that table no
/// longer serves `vip` (the config changed): the flow is scheduled again.
#[inline(always)]
fn follow_tracked(flow: *mut Flow, vip: &Vip, hash: u32) -> Result<Option<Choice>, Stat> {
    // SAFETY: `flow` points at a live `FLOWS` value; this CPU is its only
    // writer for this packet, and racing writers store whole valid flows.
    let (id, table_id) = unsafe { ((*flow).backend_id, (*flow).vip_id) };
    if let Some(backend) = tracked_backend(id, table_id)
        && policy::keeps_table(table_id, vip)
    {
        touch(flow);
        return Ok(Some(choice(id, backend, table_id, hash, false)));
    }
    // A flow moved off a down backend is not a new flow.
    let Some(table) = policy::flow_table(table_id, vip) else {
        return Ok(None);
    };
    let picked = policy::pick(&table, hash, false)?;
    restart(flow, &picked);
    Ok(Some(picked))
}

/// Points the tracked `flow` at `picked` (a new connection on a reused
/// tuple, or a re-steered flow).
#[inline(always)]
fn restart(flow: *mut Flow, picked: &Choice) {
    // SAFETY: as in `follow_tracked`.
    unsafe {
        (*flow).backend_id = picked.backend_id;
        (*flow).vip_id = picked.table_id;
        (*flow).last_seen_ns = now_ns();
    }
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

/// The backend in slot `hash % table_size` of `table`'s live half, with
/// its id, if it is up.
#[inline(always)]
pub fn maglev_backend(table: &Vip, hash: u32) -> Option<(u32, Backend)> {
    if table.table_size == 0 || table.table_size > MAX_TABLE_SIZE {
        return None;
    }
    let slot = table.table_base() + hash % table.table_size;
    let id = *MAGLEV.get(slot)?;
    Some((id, usable_backend(id)?))
}

/// Backend `id` if it exists and is up (`NO_BACKEND` is out of range).
#[inline(always)]
fn usable_backend(id: u32) -> Option<Backend> {
    BACKENDS
        .get(id)
        .copied()
        .filter(|b| b.flags & BACKEND_F_UP != 0)
}

/// Backend `id` if it is up and still serves table `table_id`: user space
/// reuses the ids of removed backends, so an old flow must not follow its
/// id to another table's backend.
#[inline(always)]
fn tracked_backend(id: u32, table_id: u32) -> Option<Backend> {
    usable_backend(id).filter(|b| b.vip_id == table_id)
}

/// A choice of backend `backend_id` in table `table_id`.
#[inline(always)]
pub fn choice(
    backend_id: u32,
    backend: Backend,
    table_id: u32,
    hash: u32,
    new_flow: bool,
) -> Choice {
    Choice {
        backend_id,
        backend,
        table_id,
        hash,
        new_flow,
        guarded: false,
        inserted: false,
    }
}

//! Routing policy: which table (pool) of the VIP a flow is scheduled in.
//!
//! The service key names the table a packet starts from. Its source rules
//! (`SOURCE_RULES`, only for tables with `VIP_F_SOURCE_RULES`) may deny the
//! client, name another table or put the client in a tenant class whose
//! new flows are rate limited; then the canary split of the table so
//! chosen may send the flow to its canary table; then Maglev picks the
//! backend there, or in the table's fallback table when the slot has no
//! usable backend. Each of these reads the table it acts on: a rule-chosen
//! pool's own canary and fallback apply, not the service table's. Tables
//! without any `VIP_F_*` policy bit pay a few branches per new flow and a
//! flag test per tracked packet.

use core::mem::MaybeUninit;

use aya_ebpf::maps::lpm_trie::Key;
use lb_common::{
    FlowKey, PolicyCounters, SourceRuleKey, Stat, VIP_F_CANARY, VIP_F_FALLBACK, VIP_F_SOURCE_DENY,
    VIP_F_SOURCE_RULES, Vip,
    policy::{NO_CLASS, NO_TABLE, RULE_DENY},
    split_bits,
};

use crate::{
    flow::{Choice, choice, maglev_backend},
    maps::{POLICY_STATS, POOL_TABLES, SOURCE_RULES, TENANT_GUARD, TENANT_LIMITS},
    mem::zero_in_place,
    syn_guard::take_token,
};

/// What the source rules gave a client: a table and a tenant class.
#[derive(Clone, Copy)]
pub struct Steer {
    /// Table new flows use (`POOL_TABLES` index), or `NO_TABLE`.
    pub table_id: u32,
    /// Tenant class new flows are charged to, or `NO_CLASS`.
    pub class_id: u32,
}

/// The source rules of a packet, if already looked up.
#[derive(Clone, Copy)]
pub struct Rules {
    /// The trie was read (for every packet of a table with deny rules).
    looked_up: bool,
    /// What it said; nothing when not read.
    steer: Steer,
}

const NO_STEER: Steer = Steer {
    table_id: NO_TABLE,
    class_id: NO_CLASS,
};

impl Rules {
    /// Not looked up yet: the new-flow step reads the trie if the table
    /// has rules.
    pub const UNREAD: Rules = Rules {
        looked_up: false,
        steer: NO_STEER,
    };
}

/// Step 3: drops the packet of a denied client. Only tables with a deny
/// rule (`VIP_F_SOURCE_DENY`) look every packet up; the others leave the
/// source rules to the new-flow step.
#[inline(always)]
pub fn screen(key: &FlowKey, vip: &Vip) -> Result<Rules, Stat> {
    let every_packet = VIP_F_SOURCE_RULES | VIP_F_SOURCE_DENY;
    if vip.flags & every_packet != every_packet {
        return Ok(Rules::UNREAD);
    }
    let steer = source_rule(key, vip)?;
    Ok(Rules {
        looked_up: true,
        steer,
    })
}

/// The table and class of a new flow from `key`'s client at `vip`, after
/// its tenant class's budget paid for it (when `charge`).
#[inline(always)]
pub fn admit(key: &FlowKey, vip: &Vip, rules: Rules, charge: bool) -> Result<Steer, Stat> {
    let steer = if rules.looked_up || vip.flags & VIP_F_SOURCE_RULES == 0 {
        rules.steer
    } else {
        source_rule(key, vip)?
    };
    if charge && steer.class_id != NO_CLASS && !tenant_admits(steer.class_id) {
        count(vip.id, |c| c.rate_limited += 1);
        return Err(Stat::DropTenantLimit);
    }
    Ok(steer)
}

/// Picks the backend of a new flow: in the table `steer` names (else
/// `vip`), or its canary, or the fallback of either. Policy counters move
/// only for a `new_flow`.
#[inline(always)]
pub fn schedule(vip: &Vip, steer: Steer, hash: u32, new_flow: bool) -> Result<Choice, Stat> {
    // Built in place: a moved copy costs the verifier more paths.
    let mut slot = MaybeUninit::uninit();
    let table = slot.write(*vip);
    if steer.table_id != NO_TABLE
        && let Some(chosen) = live_table(steer.table_id)
    {
        *table = chosen;
    }
    if table.flags & VIP_F_CANARY != 0
        && split_bits(hash) < table.canary_share
        && let Some(canary) = live_table(table.canary_id)
    {
        if new_flow {
            count(table.id, |c| c.canary_new_flows += 1);
        }
        *table = canary;
    }
    pick(table, hash, new_flow)
}

/// Maglev in `table`, or once in its fallback table when the slot has no
/// usable backend.
#[inline(always)]
pub fn pick(table: &Vip, hash: u32, new_flow: bool) -> Result<Choice, Stat> {
    let mut found = maglev_backend(table, hash);
    let mut table_id = table.id;
    if found.is_none()
        && table.flags & VIP_F_FALLBACK != 0
        && let Some(fallback) = live_table(table.fallback_id)
    {
        found = maglev_backend(&fallback, hash);
        table_id = fallback.id;
        if new_flow && found.is_some() {
            count(table.id, |c| c.fallback_new_flows += 1);
        }
    }
    let (id, backend) = found.ok_or(Stat::DropNoBackend)?;
    Ok(choice(id, backend, table_id, hash, new_flow))
}

/// The table a tracked flow was scheduled in, if it still serves `vip`:
/// `vip` itself, or a table of the same configured VIP (`owner_id`).
#[inline(always)]
pub fn flow_table(table_id: u32, vip: &Vip) -> Option<Vip> {
    if table_id == vip.id {
        return Some(*vip);
    }
    live_table(table_id).filter(|t| t.owner_id == vip.owner_id)
}

/// True when a tracked flow of table `table_id` may keep its table at
/// `vip` (see [`flow_table`]); no lookup when it is the service's own.
#[inline(always)]
pub fn keeps_table(table_id: u32, vip: &Vip) -> bool {
    table_id == vip.id || live_table(table_id).is_some_and(|t| t.owner_id == vip.owner_id)
}

/// Table `id` of `POOL_TABLES`, if one is written there.
#[inline(always)]
fn live_table(id: u32) -> Option<Vip> {
    // SAFETY: `Vip` is plain data; a value rewritten meanwhile by xlbd is
    // read whole or torn between two valid tables, either of which serves.
    POOL_TABLES.get(id).copied().filter(|t| t.table_size != 0)
}

/// The rule for `key`'s client under `vip`'s table (longest prefix),
/// counting and refusing a denied one.
#[inline(always)]
fn source_rule(key: &FlowKey, vip: &Vip) -> Result<Steer, Stat> {
    let mut slot = MaybeUninit::<AlignedRuleKey>::uninit();
    // SAFETY: the key is plain data; zero is its padding's only value.
    let lookup = &mut unsafe { zero_in_place(&mut slot) }.0;
    lookup.prefix_len = SourceRuleKey::full_prefix_len(key.family);
    lookup.data.table_id_be = vip.id.to_be_bytes();
    lookup.data.family = key.family;
    lookup.data.addr = key.src;
    let Some(rule) = SOURCE_RULES.get(&*lookup) else {
        return Ok(NO_STEER);
    };
    if rule.action == RULE_DENY {
        count(vip.id, |c| c.denied += 1);
        return Err(Stat::DropDenied);
    }
    Ok(Steer {
        table_id: rule.table_id,
        class_id: rule.class_id,
    })
}

/// A `SOURCE_RULES` key aligned for [`zero_in_place`].
#[repr(C, align(8))]
struct AlignedRuleKey(Key<SourceRuleKey>);

/// Takes one new flow from this CPU's budget of tenant class `class_id`;
/// a class without a limit (or out of range) always admits.
#[inline(always)]
fn tenant_admits(class_id: u32) -> bool {
    let (Some(limit), Some(clock)) = (
        TENANT_LIMITS.get(class_id),
        TENANT_GUARD.get_ptr_mut(class_id),
    ) else {
        return true;
    };
    take_token(clock, limit.new_flows_per_s, limit.burst)
}

/// Adds to table `id`'s policy counters on this CPU.
#[inline(always)]
fn count(id: u32, add: impl FnOnce(&mut PolicyCounters)) {
    if let Some(counters) = POLICY_STATS.get_ptr_mut(id) {
        // SAFETY: per-CPU value, and XDP runs with preemption off, so
        // nothing else writes this CPU's slot meanwhile.
        add(unsafe { &mut *counters });
    }
}

//! Routing policy: which of a VIP's tables (pools) a new flow uses.
//!
//! Every (VIP, pool) pair a VIP can reach is a table with its own id in the
//! id space of VIPs: a [`Vip`](crate::Vip) value in `POOL_TABLES` with its
//! own Maglev halves, backend slots and `VIP_STATS` entry. The service key
//! in `VIPS` names the table a packet starts from; for a new flow the
//! kernel then applies, in order:
//!
//! 1. the client's source rule (`SOURCE_RULES`, longest prefix), when the
//!    table has `VIP_F_SOURCE_RULES`: deny, another table, a tenant class;
//! 2. the tenant class's new-flow rate limit (`TENANT_LIMITS`);
//! 3. the canary split of the table chosen so far (`VIP_F_CANARY`);
//! 4. Maglev in that table, or once in its fallback table
//!    (`VIP_F_FALLBACK`) when the slot has no usable backend.
//!
//! The flow is tracked with the final table's id (`Flow::vip_id`), and a
//! tracked flow whose backend goes down is re-steered inside that table.

/// Most entries in `SOURCE_RULES`, over all VIPs and both families.
pub const MAX_SOURCE_RULES: u32 = 16_384;

/// Most tenant classes (`TENANT_LIMITS` and `TENANT_GUARD` entries).
pub const MAX_TENANT_CLASSES: u32 = 256;

/// [`SourceRule::table_id`]: the rule keeps the packet's table.
pub const NO_TABLE: u32 = u32::MAX;

/// [`SourceRule::class_id`]: the rule puts the client in no tenant class.
pub const NO_CLASS: u32 = u32::MAX;

/// [`SourceRule::action`]: serve the client, from `table_id` if set, in
/// tenant class `class_id` if set.
pub const RULE_POOL: u32 = 0;
/// [`SourceRule::action`]: drop every packet of the client to this VIP
/// (`Stat::DropDenied`).
pub const RULE_DENY: u32 = 1;

/// [`Vip::canary_share`](crate::Vip::canary_share) that sends every new
/// flow to the canary: shares are new flows per 65 536.
pub const CANARY_SHARE_ALL: u32 = 1 << 16;

/// Bits of a [`SourceRuleKey`] before the address: the table id (32) and
/// the family (8). The trie key of a `/n` rule has prefix length this
/// plus `n` ([`SourceRuleKey::prefix_len`]).
pub const SOURCE_RULE_KEY_BITS: u32 = 40;

/// Data of a `SOURCE_RULES` key (an LPM trie, so the map's key is this
/// behind a `u32` prefix length, as aya's `lpm_trie::Key` lays it out):
/// a client prefix under one table.
///
/// The table id and family lead the key, in network order, so they are
/// part of every prefix: rules of one table never match another's
/// clients, and an IPv4 rule never matches an IPv6 client.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SourceRuleKey {
    /// Id of the table the service key names (`Vip::id` of the `VIPS`
    /// value), big-endian.
    pub table_id_be: [u8; 4],
    /// `FAMILY_V4` or `FAMILY_V6`.
    pub family: u8,
    /// Client address or prefix, network order; IPv4 in bytes 0..4, the
    /// bits past the prefix zero.
    pub addr: [u8; 16],
    /// Always zero; past every prefix, so never compared.
    pub _pad: [u8; 3],
}
const _: () = assert!(core::mem::size_of::<SourceRuleKey>() == 24);

impl SourceRuleKey {
    /// The lookup key of client `addr` (family `family`) at table
    /// `table_id`; look it up with [`SourceRuleKey::full_prefix_len`].
    #[inline(always)]
    pub fn client(table_id: u32, family: u8, addr: &[u8; 16]) -> Self {
        Self {
            table_id_be: table_id.to_be_bytes(),
            family,
            addr: *addr,
            _pad: [0; 3],
        }
    }

    /// The key of the rule for `addr`/`prefix_len` (family `family`) under
    /// table `table_id`; bits of `addr` past the prefix are cleared. Insert
    /// it with [`SourceRuleKey::prefix_len`]`(prefix_len)`.
    pub fn rule(table_id: u32, family: u8, addr: &[u8; 16], prefix_len: u32) -> Self {
        let mut masked = [0u8; 16];
        for (i, byte) in masked.iter_mut().enumerate() {
            let bits = prefix_len.saturating_sub(i as u32 * 8).min(8);
            // `0xff00 >> 8` keeps the whole byte, `>> 0` none of it.
            *byte = addr[i] & (0xff00u16 >> bits) as u8;
        }
        Self {
            addr: masked,
            ..Self::client(table_id, family, addr)
        }
    }

    /// The trie prefix length of a rule for an address prefix of
    /// `prefix_len` bits.
    #[inline(always)]
    pub const fn prefix_len(prefix_len: u32) -> u32 {
        SOURCE_RULE_KEY_BITS + prefix_len
    }

    /// The trie prefix length of a lookup: the whole address of `family`.
    #[inline(always)]
    pub const fn full_prefix_len(family: u8) -> u32 {
        let bits = if family == crate::FAMILY_V4 { 32 } else { 128 };
        Self::prefix_len(bits)
    }
}

/// Value of `SOURCE_RULES`: what a client prefix gets, written by xlbd.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceRule {
    /// `RULE_POOL` or `RULE_DENY`.
    pub action: u32,
    /// Table (index of `POOL_TABLES`) new flows of these clients use, or
    /// `NO_TABLE` to keep the service's.
    pub table_id: u32,
    /// Tenant class (index of `TENANT_LIMITS`) whose new-flow budget these
    /// clients spend, or `NO_CLASS`.
    pub class_id: u32,
}
const _: () = assert!(core::mem::size_of::<SourceRule>() == 12);

impl Default for SourceRule {
    /// A rule that changes nothing: serve, same table, no class.
    fn default() -> Self {
        Self {
            action: RULE_POOL,
            table_id: NO_TABLE,
            class_id: NO_CLASS,
        }
    }
}

/// Value of `TENANT_LIMITS`, by class id: one tenant class's new-flow
/// budget, per CPU, written by xlbd. All zero (the default) is no limit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantLimit {
    /// New flows a second the class may start on each CPU; 0 is no limit.
    pub new_flows_per_s: u32,
    /// New flows the class may start at once after a quiet spell (the
    /// bucket's depth); at least 1 when the limit is on.
    pub burst: u32,
}
const _: () = assert!(core::mem::size_of::<TenantLimit>() == 8);

/// Value of `POLICY_STATS`, by table id, per CPU: what the routing policy
/// did, written by the XDP program. Each counter is kept on the table
/// whose rule acted: the service's table for `denied` and `rate_limited`,
/// the table that split or fell back for the other two.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyCounters {
    /// New flows this table's canary split sent to its canary table.
    pub canary_new_flows: u64,
    /// New flows that found no usable backend here and went to this
    /// table's fallback table.
    pub fallback_new_flows: u64,
    /// Packets dropped by a `RULE_DENY` source rule of this table.
    pub denied: u64,
    /// New flows dropped because their tenant class's budget was spent.
    pub rate_limited: u64,
}
const _: () = assert!(core::mem::size_of::<PolicyCounters>() == 32);

impl PolicyCounters {
    /// Adds `other` into `self` (for summing per-CPU values).
    pub fn add(&mut self, other: &PolicyCounters) {
        self.canary_new_flows += other.canary_new_flows;
        self.fallback_new_flows += other.fallback_new_flows;
        self.denied += other.denied;
        self.rate_limited += other.rate_limited;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FAMILY_V4;

    #[test]
    fn a_rule_key_clears_the_bits_past_its_prefix() {
        let addr = crate::v4_key_addr([10, 1, 0xff, 7]);
        let key = SourceRuleKey::rule(3, FAMILY_V4, &addr, 20);
        assert_eq!(key.addr[..4], [10, 1, 0xf0, 0]);
        assert_eq!(SourceRuleKey::prefix_len(20), 60);
        assert_eq!(key.table_id_be, [0, 0, 0, 3]);
    }

    #[test]
    fn a_lookup_key_keeps_the_whole_address() {
        let addr = [0xfd; 16];
        let key = SourceRuleKey::rule(1, crate::FAMILY_V6, &addr, 128);
        assert_eq!(key.addr, addr);
        assert_eq!(SourceRuleKey::full_prefix_len(crate::FAMILY_V6), 168);
        assert_eq!(key, SourceRuleKey::client(1, crate::FAMILY_V6, &addr));
    }
}

//! The routing policy in the maps' terms: each table's policy fields
//! (owner, canary, fallback, source-rule flags), the `SOURCE_RULES`
//! entries, the tenant classes' `TENANT_LIMITS`, and the port keys.
//!
//! A VIP's tables are its own (its `pool`) and one per other pool its
//! policy reaches. The canary split applies to every table a new flow can
//! start from or be sent to by a rule (the VIP's own, port pools,
//! source-rule pools), not to the canary's or a fallback-only table.
//! Source rules are looked up under the tables a `VIPS` key names (the
//! VIP's own and its port pools'), so a rule holds on every port.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use lb_common::policy::{NO_CLASS, NO_TABLE, RULE_DENY, RULE_POOL};
use lb_common::{
    SourceRule, SourceRuleKey, TenantLimit, VIP_F_CANARY, VIP_F_FALLBACK, VIP_F_SOURCE_DENY,
    VIP_F_SOURCE_RULES, VIP_KIND_SERVICE, VipKey,
};

use crate::config::{SourceAction, share_per_65536};

use super::desired::{DesiredState, DesiredVip};
use super::ids::Ids;
use super::live::ip_to_key_addr;

/// The policy fields of one table's `Vip` value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TablePolicy {
    /// `VIP_F_SOURCE_RULES`, `VIP_F_SOURCE_DENY`, `VIP_F_CANARY`,
    /// `VIP_F_FALLBACK` bits.
    pub flags: u32,
    /// With `VIP_F_CANARY`: the canary table's id.
    pub canary_id: u32,
    /// With `VIP_F_CANARY`: new flows per 65 536 sent there.
    pub canary_share: u32,
    /// With `VIP_F_FALLBACK`: the fallback table's id.
    pub fallback_id: u32,
    /// The VIP's own table's id.
    pub owner_id: u32,
}

/// The policy of every table, with the map entries it needs.
#[derive(Debug, Default)]
pub struct PolicyPlan {
    /// By table key.
    pub tables: HashMap<VipKey, TablePolicy>,
    /// `SOURCE_RULES` entries by (trie prefix length, key).
    pub source_rules: HashMap<(u32, SourceRuleKey), SourceRule>,
    /// `TENANT_LIMITS` from class 0, classes in name order.
    pub tenant_limits: Vec<TenantLimit>,
    /// Port service key -> table key.
    pub port_keys: HashMap<VipKey, VipKey>,
}

/// Works out the policy of `desired`, whose tables all have ids in `ids`.
pub fn policy(desired: &DesiredState, ids: &Ids) -> PolicyPlan {
    let mut plan = PolicyPlan::default();
    let classes: BTreeMap<&str, u32> = desired
        .tenants
        .keys()
        .zip(0..)
        .map(|(name, id)| (name.as_str(), id))
        .collect();
    plan.tenant_limits = desired
        .tenants
        .values()
        .map(|limit| TenantLimit {
            new_flows_per_s: limit.new_flows_per_second,
            burst: limit.burst,
        })
        .collect();

    // (owner VIP name, pool) -> (table id, table).
    let mut by_pool: HashMap<(&str, &str), (u32, &DesiredVip)> = HashMap::new();
    for vip in &desired.vips {
        let owner = vip.owner.as_deref().unwrap_or(&vip.name);
        if let Some(id) = ids.get_vip(&vip.key) {
            by_pool.insert((owner, vip.pool.as_str()), (id, vip));
        }
    }
    let table_id = |owner: &str, pool: &str| by_pool.get(&(owner, pool)).map(|(id, _)| *id);

    for vip in &desired.vips {
        let owner = vip.owner.as_deref().unwrap_or(&vip.name);
        let Some(id) = ids.get_vip(&vip.key) else {
            continue;
        };
        let own_pool = by_pool
            .iter()
            .find(|((o, _), (_, t))| *o == owner && t.owner.is_none())
            .map(|(_, (id, _))| *id);
        let mut table = TablePolicy {
            owner_id: own_pool.unwrap_or(id),
            ..TablePolicy::default()
        };
        if let Some(fallback) = desired.fallback.get(&vip.pool)
            && let Some(fallback_id) = table_id(owner, fallback)
        {
            table.flags |= VIP_F_FALLBACK;
            table.fallback_id = fallback_id;
        }

        let policy = desired.policy.get(owner);
        let rules = policy.map_or(&[][..], |p| p.source_rules.as_slice());
        let entry = vip.owner.is_none()
            || !vip.ports.is_empty()
            || rules.iter().any(|r| r.pool() == Some(vip.pool.as_str()));
        if let Some(canary) = policy.and_then(|p| p.canary.as_ref())
            && entry
            && canary.pool != vip.pool
            && !canary.share.is_zero()
            && let Some(canary_id) = table_id(owner, &canary.pool)
        {
            table.flags |= VIP_F_CANARY;
            table.canary_id = canary_id;
            table.canary_share = share_per_65536(canary.share);
        }

        let service = vip.owner.is_none() || !vip.ports.is_empty();
        if service && !rules.is_empty() {
            table.flags |= VIP_F_SOURCE_RULES;
            if rules.iter().any(|r| r.action == SourceAction::Deny) {
                table.flags |= VIP_F_SOURCE_DENY;
            }
            for rule in rules {
                let pool_table = rule.pool().and_then(|pool| table_id(owner, pool));
                let class = rule.tenant().and_then(|t| classes.get(t).copied());
                let value = SourceRule {
                    action: match rule.action {
                        SourceAction::Deny => RULE_DENY,
                        SourceAction::Route { .. } => RULE_POOL,
                    },
                    table_id: pool_table.unwrap_or(NO_TABLE),
                    class_id: class.unwrap_or(NO_CLASS),
                };
                plan.source_rules
                    .insert(rule_key(id, rule.prefix.addr, rule.prefix.len), value);
            }
        }

        for &port in &vip.ports {
            let port_key = VipKey {
                port_be: port.to_be(),
                kind: VIP_KIND_SERVICE,
                _pad: [0; 3],
                ..vip.key
            };
            plan.port_keys.insert(port_key, vip.key);
        }
        plan.tables.insert(vip.key, table);
    }
    plan
}

/// The trie entry key of a rule for `addr`/`len` under table `table_id`.
fn rule_key(table_id: u32, addr: IpAddr, len: u8) -> (u32, SourceRuleKey) {
    let (bytes, family) = ip_to_key_addr(addr);
    let key = SourceRuleKey::rule(table_id, family, &bytes, u32::from(len));
    (SourceRuleKey::prefix_len(u32::from(len)), key)
}

#[cfg(test)]
mod tests {
    use lb_common::NO_BACKEND;

    use super::super::desired::Health;
    use super::super::from_config::desired_state;
    use super::super::live::Live;
    use super::super::plan::{Plan, plan};
    use super::*;
    use crate::config::Config;

    const POLICY: &str = "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
tenants: {free: {new_flows_per_second: 100, burst: 20}}
vips:
  - name: llm
    address: 10.100.0.1
    port: 8000
    protocol: tcp
    pool: chat-eu
    table_size: 13
    port_pools: {8001: embeddings}
    source_rules:
      - {prefix: 10.1.0.0/16, pool: chat-us}
      - {prefix: 10.2.0.0/16, tenant: free}
      - {prefix: 192.0.2.0/24, deny: true}
    canary: {pool: chat-v2, share: 10%}
pools:
  chat-eu: {backends: [{address: 10.0.0.11}], fallback: chat-us}
  chat-us: {backends: [{address: 10.0.0.21}]}
  chat-v2: {backends: [{address: 10.0.0.31, state: maint}]}
  embeddings: {backends: [{address: 10.0.0.41}]}
";

    fn planned() -> Plan {
        let config = Config::from_str(POLICY, "policy.yaml")
            .expect("valid")
            .config;
        let desired = desired_state(&config).expect("desired");
        plan(&desired, &Live::default(), &Health::default()).expect("plan")
    }

    fn table<'a>(plan: &'a Plan, name: &str) -> &'a super::super::plan::PlannedVip {
        let found = plan.vips.values().find(|v| v.name == name);
        found.unwrap_or_else(|| panic!("no table {name}"))
    }

    #[test]
    fn every_pool_a_vip_reaches_gets_a_table_of_its_own() {
        let plan = planned();
        let mut names: Vec<&str> = plan.vips.values().map(|v| v.name.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            ["llm", "llm/chat-us", "llm/chat-v2", "llm/embeddings"]
        );
        let mut ids: Vec<u32> = plan.vips.values().map(|v| v.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4, "ids are distinct");
        let own = table(&plan, "llm").id;
        assert!(plan.vips.values().all(|v| v.policy.owner_id == own));
    }

    #[test]
    fn the_canary_splits_every_table_a_flow_starts_from_but_its_own() {
        let plan = planned();
        let canary = table(&plan, "llm/chat-v2");
        for name in ["llm", "llm/embeddings", "llm/chat-us"] {
            let t = table(&plan, name);
            assert_eq!(t.policy.flags & VIP_F_CANARY, VIP_F_CANARY, "{name}");
            assert_eq!(
                (t.policy.canary_id, t.policy.canary_share),
                (canary.id, 6554)
            );
        }
        assert_eq!(canary.policy.flags & VIP_F_CANARY, 0);
    }

    #[test]
    fn a_pool_without_usable_backends_gets_an_empty_table() {
        let plan = planned();
        let canary = table(&plan, "llm/chat-v2");
        assert!(canary.table.iter().all(|&slot| slot == NO_BACKEND));
    }

    #[test]
    fn the_fallback_and_port_keys_name_their_tables() {
        let plan = planned();
        let own = table(&plan, "llm");
        let us = table(&plan, "llm/chat-us");
        assert_eq!(own.policy.flags & VIP_F_FALLBACK, VIP_F_FALLBACK);
        assert_eq!(own.policy.fallback_id, us.id);
        let (port_key, table_key) = plan.port_keys.iter().next().expect("a port key");
        assert_eq!(u16::from_be(port_key.port_be), 8001);
        assert_eq!(plan.vips[table_key].name, "llm/embeddings");
    }

    #[test]
    fn source_rules_are_written_under_each_service_table() {
        let plan = planned();
        let own = table(&plan, "llm");
        let embeddings = table(&plan, "llm/embeddings");
        let us = table(&plan, "llm/chat-us");
        assert_eq!(plan.source_rules.len(), 6, "3 rules x 2 service tables");
        let deny = VIP_F_SOURCE_RULES | VIP_F_SOURCE_DENY;
        assert_eq!(own.policy.flags & deny, deny);
        assert_eq!(embeddings.policy.flags & deny, deny);
        assert_eq!(us.policy.flags & VIP_F_SOURCE_RULES, 0);

        let addr = lb_common::v4_key_addr([10, 1, 0, 0]);
        let key = SourceRuleKey::rule(own.id, lb_common::FAMILY_V4, &addr, 16);
        let rule = plan.source_rules[&(SourceRuleKey::prefix_len(16), key)];
        assert_eq!(
            (rule.action, rule.table_id, rule.class_id),
            (RULE_POOL, us.id, NO_CLASS)
        );
        let addr = lb_common::v4_key_addr([10, 2, 0, 0]);
        let key = SourceRuleKey::rule(own.id, lb_common::FAMILY_V4, &addr, 16);
        let rule = plan.source_rules[&(SourceRuleKey::prefix_len(16), key)];
        assert_eq!((rule.table_id, rule.class_id), (NO_TABLE, 0));
        assert_eq!(
            plan.tenant_limits,
            [TenantLimit {
                new_flows_per_s: 100,
                burst: 20
            }]
        );
    }
}

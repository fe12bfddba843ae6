//! Validation of the routing policy: a VIP's `port_pools`, `source_rules`
//! and `canary`, the `tenants`, and a pool's `fallback` and `cost_aware`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use lb_common::policy::{MAX_SOURCE_RULES, MAX_TENANT_CLASSES};
use serde_saphyr::Location;

use super::raw::{
    At, PoolName, RawCanary, RawCostAware, RawPool, RawSourceRule, RawTenant, RawVip,
};
use super::routing::{
    Canary, CostAware, DEFAULT_TENANT_BURST, Rollback, SourceAction, SourceRule, TenantLimit,
};
use super::types::{PoolConfig, Share};
use super::validate::Checker;
use super::values;

/// Accepted `tenants.*.new_flows_per_second`, per CPU.
pub const TENANT_RATE_RANGE: std::ops::RangeInclusive<u32> = 1..=100_000_000;
/// Accepted `tenants.*.burst`.
pub const TENANT_BURST_RANGE: std::ops::RangeInclusive<u32> = 1..=10_000_000;

/// Validates the `tenants` block.
pub(super) fn tenants(
    check: &mut Checker,
    raw: &BTreeMap<PoolName, At<RawTenant>>,
) -> BTreeMap<String, TenantLimit> {
    let mut out = BTreeMap::new();
    if raw.len() > MAX_TENANT_CLASSES as usize {
        let at = raw
            .values()
            .next()
            .map_or(Location::UNKNOWN, |t| t.referenced);
        let max = MAX_TENANT_CLASSES;
        check.error(
            at,
            "tenants",
            format!("{} tenants; at most {max}", raw.len()),
        );
    }
    for (PoolName(name), item) in raw {
        let field = format!("tenants.{name}");
        let rate_field = format!("{field}.new_flows_per_second");
        let Some(rate) = check.require(
            &item.value.new_flows_per_second,
            item.referenced,
            &rate_field,
        ) else {
            continue;
        };
        if !TENANT_RATE_RANGE.contains(&rate.value) {
            let message = format!(
                "{} is outside {TENANT_RATE_RANGE:?} new flows per second",
                rate.value
            );
            check.error(rate.referenced, &rate_field, message);
        }
        let burst = item
            .value
            .burst
            .as_ref()
            .map_or(DEFAULT_TENANT_BURST, |burst| {
                if !TENANT_BURST_RANGE.contains(&burst.value) {
                    let message = format!(
                        "{} is outside {TENANT_BURST_RANGE:?} new flows",
                        burst.value
                    );
                    check.error(burst.referenced, &format!("{field}.burst"), message);
                }
                burst.value
            });
        let limit = TenantLimit {
            new_flows_per_second: rate.value,
            burst,
        };
        out.insert(name.clone(), limit);
    }
    out
}

/// What a VIP's policy keys hold, validated.
pub(super) struct VipPolicy {
    pub port_pools: BTreeMap<u16, String>,
    pub source_rules: Vec<SourceRule>,
    pub canary: Option<Canary>,
}

/// The things a VIP's policy is checked against.
pub(super) struct PolicyFacts<'a> {
    /// The VIP's address (source prefixes must be of its family).
    pub address: Option<IpAddr>,
    /// The VIP's port.
    pub port: u16,
    /// The VIP's own pool.
    pub pool: &'a str,
    pub pools: &'a BTreeMap<String, PoolConfig>,
    pub tenants: &'a BTreeMap<String, TenantLimit>,
}

/// Validates `port_pools`, `source_rules` and `canary` of one VIP.
pub(super) fn vip_policy(
    check: &mut Checker,
    item: &At<RawVip>,
    field: &str,
    facts: &PolicyFacts,
) -> VipPolicy {
    let raw = &item.value;
    let mut port_pools = BTreeMap::new();
    for (&port, pool) in &raw.port_pools {
        let port_field = format!("{field}.port_pools.{port}");
        if facts.port == 0 {
            let message = "the VIP serves every port already; port_pools need a VIP port";
            check.error(pool.referenced, &port_field, message);
        } else if port == 0 || port == facts.port {
            let message =
                format!("port {port} cannot take a pool of its own: not 0, not the VIP's port");
            check.error(pool.referenced, &port_field, message);
        }
        if super::vips::pool_backends(check, pool, &port_field, facts.pools).is_some() {
            port_pools.insert(port, pool.value.clone());
        }
    }

    let source_rules = match &raw.source_rules {
        Some(list) => source_rules(check, list, &format!("{field}.source_rules"), facts),
        None => Vec::new(),
    };
    let canary = raw
        .canary
        .as_ref()
        .and_then(|c| canary(check, c, &format!("{field}.canary"), facts));
    VipPolicy {
        port_pools,
        source_rules,
        canary,
    }
}

fn source_rules(
    check: &mut Checker,
    list: &At<Vec<At<RawSourceRule>>>,
    field: &str,
    facts: &PolicyFacts,
) -> Vec<SourceRule> {
    if list.value.len() > MAX_SOURCE_RULES as usize {
        let message = format!("{} rules; at most {MAX_SOURCE_RULES}", list.value.len());
        check.error(list.referenced, field, message);
    }
    let mut out: Vec<SourceRule> = Vec::new();
    for (i, item) in list.value.iter().enumerate() {
        let field = format!("{field}[{i}]");
        if let Some(rule) = source_rule(check, item, &field, facts) {
            if out.iter().any(|other| other.prefix == rule.prefix) {
                let at = item
                    .value
                    .prefix
                    .as_ref()
                    .map_or(item.referenced, |p| p.referenced);
                let message = format!(
                    "prefix {}/{} is listed twice",
                    rule.prefix.addr, rule.prefix.len
                );
                check.error(at, &format!("{field}.prefix"), message);
                continue;
            }
            out.push(rule);
        }
    }
    out
}

fn source_rule(
    check: &mut Checker,
    item: &At<RawSourceRule>,
    field: &str,
    facts: &PolicyFacts,
) -> Option<SourceRule> {
    let raw = &item.value;
    let prefix_field = format!("{field}.prefix");
    let text = check.require(&raw.prefix, item.referenced, &prefix_field)?;
    let prefix = check.parse(text, &prefix_field, values::prefix)?;
    if let Some(address) = facts.address
        && address.is_ipv4() != prefix.addr.is_ipv4()
    {
        let family = if address.is_ipv4() { "IPv4" } else { "IPv6" };
        let message = format!(
            "{:?} is not an {family} prefix, as the VIP's address",
            text.value
        );
        check.error(text.referenced, &prefix_field, message);
        return None;
    }

    let deny = raw.deny.as_ref().filter(|d| d.value);
    if let Some(deny) = deny {
        for (value, name) in [(raw.pool.as_ref(), "pool"), (raw.tenant.as_ref(), "tenant")] {
            if let Some(value) = value {
                let message = "a denied prefix takes no pool or tenant";
                check.error(value.referenced, &format!("{field}.{name}"), message);
            }
        }
        let _ = deny;
        return Some(SourceRule {
            prefix,
            action: SourceAction::Deny,
        });
    }
    if raw.pool.is_none() && raw.tenant.is_none() {
        let message = "missing; a rule needs a pool, a tenant or deny: true";
        check.error(item.referenced, &format!("{field}.pool"), message);
        return None;
    }
    let pool = match &raw.pool {
        Some(pool) => {
            let pool_field = format!("{field}.pool");
            super::vips::pool_backends(check, pool, &pool_field, facts.pools)?;
            Some(pool.value.clone())
        }
        None => None,
    };
    let tenant = match &raw.tenant {
        Some(tenant) if !facts.tenants.contains_key(&tenant.value) => {
            let message = format!("tenant {} is not defined under tenants", tenant.value);
            check.error(tenant.referenced, &format!("{field}.tenant"), message);
            return None;
        }
        Some(tenant) => Some(tenant.value.clone()),
        None => None,
    };
    Some(SourceRule {
        prefix,
        action: SourceAction::Route { pool, tenant },
    })
}

fn canary(
    check: &mut Checker,
    raw: &At<RawCanary>,
    field: &str,
    facts: &PolicyFacts,
) -> Option<Canary> {
    let at = raw.referenced;
    let raw = &raw.value;
    let pool_field = format!("{field}.pool");
    let share_field = format!("{field}.share");
    let pool = check.require(&raw.pool, at, &pool_field);
    let share = check.require(&raw.share, at, &share_field);
    let (pool, share) = (pool?, share?);
    let share = check.parse(share, &share_field, values::percent);
    if pool.value == facts.pool {
        let message = format!("pool {} is the VIP's own pool", pool.value);
        check.error(pool.referenced, &pool_field, message);
        return None;
    }
    super::vips::pool_backends(check, pool, &pool_field, facts.pools)?;

    let rollback = match &raw.rollback {
        Some(rollback) => Some(self::rollback(
            check,
            rollback,
            &format!("{field}.rollback"),
            pool,
            facts,
        )?),
        None => None,
    };
    Some(Canary {
        pool: pool.value.clone(),
        share: share?,
        rollback,
    })
}

fn rollback(
    check: &mut Checker,
    raw: &At<super::raw::RawRollback>,
    field: &str,
    pool: &At<String>,
    facts: &PolicyFacts,
) -> Option<Rollback> {
    let at = raw.referenced;
    let raw = &raw.value;
    let mut threshold = |value: Option<&At<f64>>, name: &str| -> Result<Option<Share>, ()> {
        let Some(value) = value else { return Ok(None) };
        let field = format!("{field}.{name}");
        match values::share(value.value) {
            Ok(share) if !share.is_zero() => Ok(Some(share)),
            Ok(_) => {
                check.error(value.referenced, &field, "must be above 0");
                Err(())
            }
            Err(message) => {
                check.error(value.referenced, &field, message);
                Err(())
            }
        }
    };
    let max_down_share = threshold(raw.max_down_share.as_ref(), "max_down_share");
    let max_load = threshold(raw.max_load.as_ref(), "max_load");
    let (Ok(max_down_share), Ok(max_load)) = (max_down_share, max_load) else {
        return None;
    };
    if max_down_share.is_none() && max_load.is_none() {
        let message = "missing; a rollback needs max_down_share, max_load or both";
        check.error(at, &format!("{field}.max_down_share"), message);
        return None;
    }
    let has_signal = facts
        .pools
        .get(&pool.value)
        .is_some_and(|p| p.load_signal.is_some());
    if let (Some(_), false, Some(value)) = (max_load, has_signal, raw.max_load.as_ref()) {
        let message = format!("pool {} has no load_signal to compare with", pool.value);
        check.error(value.referenced, &format!("{field}.max_load"), message);
        return None;
    }
    Some(Rollback {
        max_down_share,
        max_load,
    })
}

/// Validates every pool's `fallback` and `cost_aware` once all pools are
/// known, and stores them in `pools`.
pub(super) fn pool_policies(
    check: &mut Checker,
    raw: &BTreeMap<PoolName, At<RawPool>>,
    pools: &mut BTreeMap<String, PoolConfig>,
) {
    for (PoolName(name), item) in raw {
        let field = format!("pools.{name}");
        let fallback = item
            .value
            .fallback
            .as_ref()
            .and_then(|f| fallback(check, f, name, &format!("{field}.fallback"), raw, pools));
        let cost_aware = item.value.cost_aware.as_ref().and_then(|c| {
            cost_aware(
                check,
                c,
                item,
                &format!("{field}.cost_aware"),
                pools.get(name)?,
            )
        });
        if let Some(pool) = pools.get_mut(name) {
            pool.fallback = fallback;
            pool.cost_aware = cost_aware;
        }
    }
}

fn fallback(
    check: &mut Checker,
    raw: &At<String>,
    name: &str,
    field: &str,
    raw_pools: &BTreeMap<PoolName, At<RawPool>>,
    pools: &BTreeMap<String, PoolConfig>,
) -> Option<String> {
    if raw.value == name {
        let message = format!("pool {name} cannot fall back to itself");
        check.error(raw.referenced, field, message);
        return None;
    }
    super::vips::pool_backends(check, raw, field, pools)?;
    let next = raw_pools
        .get(&PoolName(raw.value.clone()))
        .and_then(|p| p.value.fallback.as_ref());
    if next.is_some() {
        let message = format!(
            "pool {} has a fallback of its own, which is not taken: one hop only",
            raw.value
        );
        check.warn(raw.referenced, field, message);
    }
    Some(raw.value.clone())
}

fn cost_aware(
    check: &mut Checker,
    raw: &At<RawCostAware>,
    pool_item: &At<RawPool>,
    field: &str,
    pool: &PoolConfig,
) -> Option<CostAware> {
    let spill_field = format!("{field}.spill_load");
    let spill = check.require(&raw.value.spill_load, raw.referenced, &spill_field)?;
    if !(spill.value > 0.0 && spill.value <= 1.0) {
        let message = format!("{} is not a load in (0, 1], as in 0.8", spill.value);
        check.error(spill.referenced, &spill_field, message);
        return None;
    }
    if pool.load_signal.is_none() {
        let message = "the pool has no load_signal: the cheapest tier takes every new flow \
            while it has a backend up";
        check.warn(raw.referenced, field, message);
    }

    let items = pool_item
        .value
        .backends
        .as_ref()
        .map(|b| b.value.as_slice());
    let mut cost = BTreeMap::new();
    for (i, (backend, item)) in pool.backends.iter().zip(items.unwrap_or(&[])).enumerate() {
        let label_field = format!(
            "{}.backends[{i}].labels.cost",
            field.trim_end_matches(".cost_aware")
        );
        let value = match backend.labels.get("cost") {
            None => Err("missing; cost_aware needs every backend's cost label".to_owned()),
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|c| c.is_finite() && *c >= 0.0)
                .ok_or_else(|| {
                    format!("{text:?} is not a cost: a number of at least 0, as in \"2.5\"")
                }),
        };
        match value {
            Ok(value) => {
                cost.insert(backend.address, value);
            }
            Err(message) => check.error(item.referenced, &label_field, message),
        }
    }
    Some(CostAware {
        spill_load: spill.value,
        cost,
    })
}

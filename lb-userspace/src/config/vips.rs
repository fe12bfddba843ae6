//! Validation of `vips`: addresses, pools, Maglev table sizes, duplicates
//! and the data plane's limits.

use std::collections::BTreeMap;

use lb_common::{DEFAULT_TABLE_SIZE, MAX_TABLE_SIZE};

use super::raw::{At, RawVip};
use super::routing::TenantLimit;
use super::routing_check::PolicyFacts;
use super::types::{PoolConfig, VipConfig};
use super::validate::Checker;
use super::values;
use crate::dataplane::Limits;
use crate::maglev;

/// Validates every VIP against the already validated `pools`.
pub(super) fn vips(
    check: &mut Checker,
    raw: Option<&At<Vec<At<RawVip>>>>,
    pools: &BTreeMap<String, PoolConfig>,
    tenants: &BTreeMap<String, TenantLimit>,
    limits: Limits,
) -> Vec<VipConfig> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    if raw.value.len() > limits.vips as usize {
        let message = format!(
            "{} VIPs listed; limits.vips allows {} (at most {})",
            raw.value.len(),
            limits.vips,
            lb_common::MAX_VIPS
        );
        check.error(raw.referenced, "vips", message);
    }

    let mut out: Vec<VipConfig> = Vec::new();
    for (i, item) in raw.value.iter().enumerate() {
        if let Some(vip) = vip(check, item, &format!("vips[{i}]"), (pools, tenants)) {
            check_unique(check, item, i, &vip, &out);
            out.push(vip);
        }
    }

    check_tables(check, raw, &out, pools, limits);
    out
}

/// Every (VIP, pool) pair a VIP reaches is a table with its own id and
/// backend slots: they must fit the data plane's limits.
fn check_tables(
    check: &mut Checker,
    raw: &At<Vec<At<RawVip>>>,
    vips: &[VipConfig],
    pools: &BTreeMap<String, PoolConfig>,
    limits: Limits,
) {
    let tables: Vec<&PoolConfig> = vips
        .iter()
        .flat_map(|vip| tables_of(vip, pools))
        .filter_map(|pool| pools.get(pool))
        .collect();
    let vip_count = raw.value.len();
    if tables.len() > limits.vips as usize && vip_count <= limits.vips as usize {
        let message = format!(
            "the VIPs reach {} (VIP, pool) tables in all (own pool, port pools, \
             source-rule pools, canary, fallbacks); limits.vips allows {} (at most {})",
            tables.len(),
            limits.vips,
            lb_common::MAX_VIPS
        );
        check.error(raw.referenced, "vips", message);
    }
    let slots: usize = tables.iter().map(|pool| pool.backends.len()).sum();
    if slots > limits.backends as usize {
        let message = format!(
            "the VIPs' pools hold {slots} backends in all (one per VIP, pool and backend); \
             limits.backends allows {} (at most {})",
            limits.backends,
            lb_common::MAX_BACKENDS
        );
        check.error(raw.referenced, "vips", message);
    }
}

/// The pools `vip` reaches, then their fallbacks, each once (as
/// `Config::tables_of`, before the `Config` exists).
fn tables_of<'a>(vip: &'a VipConfig, pools: &'a BTreeMap<String, PoolConfig>) -> Vec<&'a str> {
    let mut out = vip.reachable_pools();
    let fallbacks: Vec<&str> = out
        .iter()
        .filter_map(|pool| pools.get(*pool)?.fallback.as_deref())
        .collect();
    for fallback in fallbacks {
        if !out.contains(&fallback) {
            out.push(fallback);
        }
    }
    out
}

fn vip(
    check: &mut Checker,
    item: &At<RawVip>,
    field: &str,
    (pools, tenants): (
        &BTreeMap<String, PoolConfig>,
        &BTreeMap<String, TenantLimit>,
    ),
) -> Option<VipConfig> {
    let raw = &item.value;
    let at = item.referenced;
    let name = check.require(&raw.name, at, &format!("{field}.name"));
    let address = check.require(&raw.address, at, &format!("{field}.address"));
    let port = check.require(&raw.port, at, &format!("{field}.port"));
    let protocol = check.require(&raw.protocol, at, &format!("{field}.protocol"));
    let pool = check.require(&raw.pool, at, &format!("{field}.pool"));
    let (name, address, port, protocol, pool) = (name?, address?, port?, protocol?, pool?);

    let name_ok = check.parse(name, &format!("{field}.name"), values::name);
    let address = check.parse(address, &format!("{field}.address"), values::address);
    let backends = pool_backends(check, pool, &format!("{field}.pool"), pools);
    let table_size = table_size(
        check,
        raw.table_size.as_ref(),
        &format!("{field}.table_size"),
        backends,
    );

    let facts = PolicyFacts {
        address: address.ok_or(()).ok(),
        port: port.value,
        pool: &pool.value,
        pools,
        tenants,
    };
    let policy = super::routing_check::vip_policy(check, item, field, &facts);

    name_ok?;
    Some(VipConfig {
        name: name.value.clone(),
        address: address?,
        port: port.value,
        protocol: protocol.value,
        pool: pool.value.clone(),
        source_affinity: raw.source_affinity,
        table_size: table_size?,
        port_pools: policy.port_pools,
        source_rules: policy.source_rules,
        canary: policy.canary,
    })
}

/// Backends of the pool `pool` names, which must exist and be non-empty.
pub(super) fn pool_backends(
    check: &mut Checker,
    pool: &At<String>,
    field: &str,
    pools: &BTreeMap<String, PoolConfig>,
) -> Option<usize> {
    let Some(found) = pools.get(&pool.value) else {
        check.error(
            pool.referenced,
            field,
            format!("pool {} is not defined under pools", pool.value),
        );
        return None;
    };
    if found.backends.is_empty() {
        // Backends left out for their own errors do not make the pool
        // empty: those errors say what is wrong.
        let backends_field = format!("pools.{}.backends[", pool.value);
        if check
            .errors
            .iter()
            .any(|e| e.field.starts_with(&backends_field))
        {
            return None;
        }
        check.error(
            pool.referenced,
            field,
            format!("pool {} has no backends", pool.value),
        );
        return None;
    }
    if !found.backends.iter().any(|b| b.takes_new_flows()) {
        let message = format!(
            "no backend of pool {} takes new flows (weight 0 or not ready)",
            pool.value
        );
        check.warn(pool.referenced, field, message);
    }
    Some(found.backends.len())
}

/// The table size: a prime no larger than `MAX_TABLE_SIZE` with room for
/// every backend; a warning when it is too small for even shares.
fn table_size(
    check: &mut Checker,
    raw: Option<&At<u32>>,
    field: &str,
    backends: Option<usize>,
) -> Option<u32> {
    let Some(raw) = raw else {
        return Some(DEFAULT_TABLE_SIZE);
    };
    let (size, at) = (raw.value, raw.referenced);
    if size > MAX_TABLE_SIZE {
        check.error(
            at,
            field,
            format!("{size} is above the largest table size {MAX_TABLE_SIZE}"),
        );
        return None;
    }
    if !maglev::is_prime(size) {
        check.error(at, field, format!("{size} is not prime"));
        return None;
    }
    let backends = backends.unwrap_or(0);
    if size as usize <= backends {
        check.error(
            at,
            field,
            format!("{size} slots cannot hold {backends} backends"),
        );
        return None;
    }
    if maglev::is_undersized(size, backends) {
        let min = maglev::MIN_SLOTS_PER_BACKEND;
        let message = format!(
            "{size} slots for {backends} backends is below {min} per backend; shares will be uneven"
        );
        check.warn(at, field, message);
    }
    Some(size)
}

/// Rejects a VIP whose (address, port, protocol) an earlier one serves.
fn check_unique(
    check: &mut Checker,
    item: &At<RawVip>,
    index: usize,
    vip: &VipConfig,
    earlier: &[VipConfig],
) {
    // A VIP serves its port and its port pools' ports.
    let ports = |v: &VipConfig| -> Vec<u16> {
        std::iter::once(v.port)
            .chain(v.port_pools.keys().copied())
            .collect()
    };
    let mine = ports(vip);
    let clash = |other: &VipConfig| {
        let same_service = (other.address, other.protocol) == (vip.address, vip.protocol);
        let port = ports(other).into_iter().find(|p| mine.contains(p));
        port.filter(|_| same_service)
    };
    if let Some((first, port)) = earlier.iter().find_map(|o| Some((o, clash(o)?))) {
        let at = item
            .value
            .address
            .as_ref()
            .map_or(item.referenced, |a| a.referenced);
        let message = format!(
            "{} port {} {} is already served by VIP {}",
            vip.address,
            port,
            vip.protocol.name(),
            first.name
        );
        check.error(at, &format!("vips[{index}].address"), message);
    }
    if let Some(first) = earlier.iter().find(|other| other.name == vip.name) {
        let at = item
            .value
            .name
            .as_ref()
            .map_or(item.referenced, |n| n.referenced);
        check.error(
            at,
            &format!("vips[{index}].name"),
            format!("VIP name {} is already used", first.name),
        );
    }
}

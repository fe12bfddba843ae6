//! Validation of `vips`: addresses, pools, Maglev table sizes, duplicates
//! and the data plane's limits.

use std::collections::BTreeMap;

use lb_common::{DEFAULT_TABLE_SIZE, MAX_TABLE_SIZE};

use super::raw::{At, RawVip};
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
        if let Some(vip) = vip(check, item, &format!("vips[{i}]"), pools) {
            check_unique(check, item, i, &vip, &out);
            out.push(vip);
        }
    }

    let slots: usize = out
        .iter()
        .filter_map(|vip| pools.get(&vip.pool))
        .map(|pool| pool.backends.len())
        .sum();
    if slots > limits.backends as usize {
        let message = format!(
            "the VIPs' pools hold {slots} backends in all (one per VIP and backend); \
             limits.backends allows {} (at most {})",
            limits.backends,
            lb_common::MAX_BACKENDS
        );
        check.error(raw.referenced, "vips", message);
    }
    out
}

fn vip(
    check: &mut Checker,
    item: &At<RawVip>,
    field: &str,
    pools: &BTreeMap<String, PoolConfig>,
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

    name_ok?;
    Some(VipConfig {
        name: name.value.clone(),
        address: address?,
        port: port.value,
        protocol: protocol.value,
        pool: pool.value.clone(),
        source_affinity: raw.source_affinity,
        table_size: table_size?,
    })
}

/// Backends of the pool `pool` names, which must exist and be non-empty.
fn pool_backends(
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
    let same = |other: &&VipConfig| {
        (other.address, other.port, other.protocol) == (vip.address, vip.port, vip.protocol)
    };
    if let Some(first) = earlier.iter().find(same) {
        let at = item
            .value
            .address
            .as_ref()
            .map_or(item.referenced, |a| a.referenced);
        let message = format!(
            "{} port {} {} is already served by VIP {}",
            vip.address,
            vip.port,
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

//! Validation of `pools`: backends, weights, states, and the reserved
//! health-check and load-signal settings.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde_saphyr::Location;

use super::autoscale::PoolFacts;
use super::raw::{
    ActuatorName, At, CheckKindName, PoolName, RawBackend, RawEncap, RawHealthCheck, RawPool,
};
use super::types::{
    BackendConfig, CheckKind, HealthCheck, PoolConfig, Share, StatusCodes, VipConfig,
};
use super::validate::Checker;
use super::values;

/// Largest backend weight.
pub const MAX_WEIGHT: u32 = 10_000;
/// Weight of a backend that names none.
pub const DEFAULT_WEIGHT: u32 = 100;

/// Health check defaults: interval, timeout, rise, fall, HTTP path.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// See [`DEFAULT_CHECK_INTERVAL`].
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// See [`DEFAULT_CHECK_INTERVAL`].
pub const DEFAULT_RISE: u32 = 2;
/// See [`DEFAULT_CHECK_INTERVAL`].
pub const DEFAULT_FALL: u32 = 3;
/// See [`DEFAULT_CHECK_INTERVAL`].
pub const DEFAULT_CHECK_PATH: &str = "/healthz";

/// Longest `slow_start` window.
pub const MAX_SLOW_START: Duration = Duration::from_secs(3600);

/// Load signal defaults: path, interval, timeout.
pub const DEFAULT_LOAD_PATH: &str = "/metrics";
/// See [`DEFAULT_LOAD_PATH`].
pub const DEFAULT_LOAD_INTERVAL: Duration = Duration::from_secs(5);
/// See [`DEFAULT_LOAD_PATH`].
pub const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(1);

/// Validates every pool. `encap` says which outer families can be sent.
pub(super) fn pools(
    check: &mut Checker,
    raw: &BTreeMap<PoolName, At<RawPool>>,
    encap: Option<&RawEncap>,
) -> BTreeMap<String, PoolConfig> {
    let mut pools = BTreeMap::new();
    for (PoolName(name), pool) in raw {
        let field = format!("pools.{name}");
        let pool = &pool.value;
        let backends = match &pool.backends {
            Some(list) => backends(check, &list.value, &field, encap),
            None => Vec::new(),
        };
        let health_check = pool
            .health_check
            .as_ref()
            .map(|hc| health_check(check, hc, &format!("{field}.health_check")));
        let load_signal = pool
            .load_signal
            .as_ref()
            .map(|ls| super::load::load_signal(check, ls, &format!("{field}.load_signal")));
        let panic_threshold = pool.panic_threshold.as_ref().map_or(Share::ZERO, |raw| {
            let field = format!("{field}.panic_threshold");
            let share = values::share(raw.value);
            share
                .map_err(|message| check.error(raw.referenced, &field, message))
                .unwrap_or_default()
        });
        let slow_start = pool.slow_start.as_ref().map_or(Duration::ZERO, |raw| {
            slow_start(check, raw, &format!("{field}.slow_start"))
        });
        let facts = PoolFacts {
            backends: &backends,
            load_signal: load_signal.as_ref(),
        };
        let autoscale = pool.autoscale.as_ref().and_then(|a| {
            super::autoscale::autoscale(check, a, &format!("{field}.autoscale"), &facts)
        });
        check_standby_flags(check, pool, &backends, &field);
        pools.insert(
            name.clone(),
            PoolConfig {
                backends,
                health_check,
                load_signal,
                panic_threshold,
                slow_start,
                autoscale,
                // Set by `routing_check::pool_policies` once every pool
                // is known.
                fallback: None,
                cost_aware: None,
            },
        );
    }
    pools
}

fn backends(
    check: &mut Checker,
    raw: &[At<RawBackend>],
    pool_field: &str,
    encap: Option<&RawEncap>,
) -> Vec<BackendConfig> {
    let mut out: Vec<BackendConfig> = Vec::new();
    for (i, item) in raw.iter().enumerate() {
        let field = format!("{pool_field}.backends[{i}]");
        let raw = &item.value;

        let address_field = format!("{field}.address");
        let Some(text) = check.require(&raw.address, item.referenced, &address_field) else {
            continue;
        };
        let Some(address) = check.parse(text, &address_field, values::address) else {
            continue;
        };
        if out.iter().any(|b| b.address == address) {
            check.error(
                text.referenced,
                &address_field,
                format!("backend {address} is listed twice"),
            );
        }
        check_carriable(check, encap, text.referenced, &address_field, address);

        let weight = raw.weight.as_ref().map_or(DEFAULT_WEIGHT, |w| {
            if w.value > MAX_WEIGHT {
                let message = format!("{} is out of range 0..={MAX_WEIGHT}", w.value);
                check.error(w.referenced, &format!("{field}.weight"), message);
            }
            w.value
        });
        let labels = raw.labels.clone();
        out.push(BackendConfig {
            address,
            weight,
            state: raw.state,
            labels,
            standby: raw.standby,
        });
    }
    out
}

/// `standby: true` only means something to a standby actuator.
fn check_standby_flags(
    check: &mut Checker,
    raw: &RawPool,
    backends: &[BackendConfig],
    pool_field: &str,
) {
    // As written, so a broken autoscale section is not reported twice.
    let standby_actuator = raw.autoscale.as_ref().is_some_and(|a| {
        let actuator = a.value.actuator.as_ref();
        actuator.is_none_or(|a| a.value.kind == ActuatorName::Standby)
    });
    let Some(list) = raw.backends.as_ref().filter(|_| !standby_actuator) else {
        return;
    };
    let flagged = backends.iter().zip(&list.value).enumerate();
    for (i, (_, item)) in flagged.filter(|(_, (b, _))| b.standby) {
        let field = format!("{pool_field}.backends[{i}].standby");
        let message = "applies only to pools whose autoscale actuator is standby";
        check.error(item.referenced, &field, message);
    }
}

/// The data plane carries either family inside either (IPIP, IPv6-in-IPv4,
/// IP6IP6), but the outer source comes from the backend's own family.
fn check_carriable(
    check: &mut Checker,
    encap: Option<&RawEncap>,
    at: Location,
    field: &str,
    address: IpAddr,
) {
    let has_source = match address {
        IpAddr::V4(_) => encap.is_some_and(|e| e.source_v4.is_some()),
        IpAddr::V6(_) => encap.is_some_and(|e| e.source_v6.is_some()),
    };
    if !has_source {
        let (family, key) = if address.is_ipv4() {
            ("IPv4", "source_v4")
        } else {
            ("IPv6", "source_v6")
        };
        let message = format!(
            "{family} backend {address} cannot be reached: encap.{key} (the outer {family} \
                source) is not set"
        );
        check.error(at, field, message);
    }
}

fn health_check(check: &mut Checker, raw: &At<RawHealthCheck>, field: &str) -> HealthCheck {
    let at = raw.referenced;
    let raw = &raw.value;
    let defaults = (DEFAULT_CHECK_INTERVAL, DEFAULT_CHECK_TIMEOUT);
    let (interval, timeout) = timing(check, (&raw.interval, &raw.timeout), at, field, defaults);

    let kind = match raw.kind {
        CheckKindName::Tcp => {
            let http_only = [
                (raw.path.as_ref(), "path"),
                (raw.expect_status.as_ref(), "expect_status"),
                (raw.body_contains.as_ref(), "body_contains"),
            ];
            for (value, name) in http_only {
                if let Some(value) = value {
                    let field = format!("{field}.{name}");
                    check.error(value.referenced, &field, "applies to http checks only");
                }
            }
            CheckKind::Tcp
        }
        CheckKindName::Http => http_check(check, raw, field),
    };
    let port = raw.port.as_ref().map(|port| {
        if port.value == 0 {
            check.error(port.referenced, &format!("{field}.port"), "must be above 0");
        }
        port.value
    });

    let mut count = |value: &Option<At<u32>>, name: &str, default: u32| {
        let Some(value) = value else { return default };
        if !(1..=100).contains(&value.value) {
            check.error(
                value.referenced,
                &format!("{field}.{name}"),
                format!("{} is out of range 1..=100", value.value),
            );
        }
        value.value
    };
    let rise = count(&raw.rise, "rise", DEFAULT_RISE);
    let fall = count(&raw.fall, "fall", DEFAULT_FALL);
    HealthCheck {
        kind,
        interval,
        timeout,
        rise,
        fall,
        port,
    }
}

/// The HTTP settings of a check: path, expected codes, body text.
fn http_check(check: &mut Checker, raw: &RawHealthCheck, field: &str) -> CheckKind {
    let path = match &raw.path {
        Some(path) => url_path(check, path, &format!("{field}.path")),
        None => DEFAULT_CHECK_PATH.to_owned(),
    };
    let expect_status = match &raw.expect_status {
        Some(text) => {
            let field = format!("{field}.expect_status");
            let codes = check.parse(text, &field, values::status_codes);
            codes.unwrap_or_default()
        }
        None => StatusCodes::default(),
    };
    let body_contains = raw.body_contains.as_ref().map(|b| b.value.clone());
    CheckKind::Http {
        path,
        expect_status,
        body_contains,
    }
}

/// Gives each health check without a `port` the port its pool is served
/// on (see `check_port_source`). Runs after the VIPs are validated.
pub(super) fn default_check_ports(
    check: &mut Checker,
    raw: &BTreeMap<PoolName, At<RawPool>>,
    pools: &mut BTreeMap<String, PoolConfig>,
    vips: &[VipConfig],
) {
    for (PoolName(name), raw_pool) in raw {
        let Some(raw_check) = &raw_pool.value.health_check else {
            continue;
        };
        let unset = pools
            .get(name)
            .and_then(|p| p.health_check.as_ref())
            .is_some_and(|hc| hc.port.is_none());
        if !unset {
            continue;
        }
        let field = format!("pools.{name}.health_check.port");
        let port = match check_port_source(name, pools, vips) {
            Some((vip, 0)) => {
                let message = format!(
                    "missing; VIP {} serves every port, so the check needs a port",
                    vip.name
                );
                check.error(raw_check.referenced, &field, message);
                continue;
            }
            Some((_, port)) => port,
            None => {
                let message = "no VIP serves this pool, so its backends are not checked; \
                     set a port to check them";
                check.warn(raw_check.referenced, &field, message);
                continue;
            }
        };
        if let Some(health_check) = pools.get_mut(name).and_then(|p| p.health_check.as_mut()) {
            health_check.port = Some(port);
        }
    }
}

/// The VIP whose port a check of pool `name` probes, and that port: the
/// first VIP (in file order) whose own pool it is; else a port pool's
/// port; else the first VIP that reaches it (source rule, canary or
/// fallback), on the VIP's port.
fn check_port_source<'a>(
    name: &str,
    pools: &BTreeMap<String, PoolConfig>,
    vips: &'a [VipConfig],
) -> Option<(&'a VipConfig, u16)> {
    if let Some(vip) = vips.iter().find(|vip| vip.pool == name) {
        return Some((vip, vip.port));
    }
    let port_pool = vips.iter().find_map(|vip| {
        let (port, _) = vip.port_pools.iter().find(|(_, pool)| *pool == name)?;
        Some((vip, *port))
    });
    if port_pool.is_some() {
        return port_pool;
    }
    let fallback_of = |pool: &str| pools.get(pool).and_then(|p| p.fallback.as_deref());
    let reached = vips.iter().find(|vip| {
        let reachable = vip.reachable_pools();
        reachable.contains(&name) || reachable.iter().any(|p| fallback_of(p) == Some(name))
    });
    reached.map(|vip| (vip, vip.port))
}

/// A slow-start window: a duration up to [`MAX_SLOW_START`]; 0 is off.
fn slow_start(check: &mut Checker, raw: &At<String>, field: &str) -> Duration {
    let window = check
        .parse(raw, field, values::duration)
        .unwrap_or_default();
    if window > MAX_SLOW_START {
        let message = format!("{window:?} is longer than {MAX_SLOW_START:?}");
        check.error(raw.referenced, field, message);
    }
    window
}

/// An interval and a timeout, each above 0, the timeout no longer than the
/// interval.
pub(super) fn timing(
    check: &mut Checker,
    (interval, timeout): (&Option<At<String>>, &Option<At<String>>),
    parent: Location,
    field: &str,
    defaults: (Duration, Duration),
) -> (Duration, Duration) {
    let mut read = |text: &Option<At<String>>, name: &str, default: Duration| {
        let Some(text) = text else {
            return (default, None, true);
        };
        let field = format!("{field}.{name}");
        let value = check.parse(text, &field, values::duration);
        if value.is_some_and(|v| v.is_zero()) {
            check.error(text.referenced, &field, "must be longer than 0");
        }
        let valid = value.filter(|v| !v.is_zero());
        (
            valid.unwrap_or(default),
            Some(text.referenced),
            valid.is_some(),
        )
    };
    let (interval, interval_at, interval_ok) = read(interval, "interval", defaults.0);
    let (timeout, timeout_at, timeout_ok) = read(timeout, "timeout", defaults.1);
    // Compared only when both are valid: a rejected one has its own error.
    if interval_ok && timeout_ok && timeout > interval {
        let at = timeout_at.or(interval_at).unwrap_or(parent);
        let message = format!("{timeout:?} is longer than the interval {interval:?}");
        check.error(at, &format!("{field}.timeout"), message);
    }
    (interval, timeout)
}

pub(super) fn url_path(check: &mut Checker, raw: &At<String>, field: &str) -> String {
    let bad_char = |c: char| c.is_whitespace() || c.is_control();
    if !raw.value.starts_with('/') || raw.value.contains(bad_char) {
        let message = format!(
            "{:?} is not a URL path: it starts with / and holds no spaces or control characters",
            raw.value
        );
        check.error(raw.referenced, field, message);
    }
    raw.value.clone()
}

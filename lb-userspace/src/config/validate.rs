//! Raw config to [`Config`]: every check that needs no kernel, run once.
//!
//! Validation goes on after a problem so that one run reports them all;
//! each is an [`Issue`] naming the line and field. Pools are checked before
//! VIPs, which refer to them.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_saphyr::Location;

use super::error::Issue;
use super::raw::{At, RawConfig, RawEncap, RawInterface};
use super::types::{Config, Encap, Interface};
use super::{pools, values, vips};

/// Default `pin_path`.
pub const DEFAULT_PIN_PATH: &str = "/sys/fs/bpf/xlb";
/// Default `control_socket`.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/xlb/xlbd.sock";
/// Default `metrics_listen`.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9641";
/// Accepted `flow_table_size`, in flows.
pub const FLOW_TABLE_RANGE: std::ops::RangeInclusive<u32> = 1024..=16_777_216;
/// Accepted `encap.mtu`, in bytes.
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 576..=9216;

/// Collects the errors and warnings of one validation run.
pub(super) struct Checker<'a> {
    origin: &'a str,
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
}

impl<'a> Checker<'a> {
    pub fn new(origin: &'a str) -> Self {
        Self {
            origin,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Records an error at `at`.
    pub fn error(&mut self, at: Location, field: &str, message: impl Into<String>) {
        self.errors
            .push(Issue::new(self.origin, at, field, message));
    }

    /// Records a warning at `at`.
    pub fn warn(&mut self, at: Location, field: &str, message: impl Into<String>) {
        self.warnings
            .push(Issue::new(self.origin, at, field, message));
    }

    /// Records an error about a key missing from the top of the file.
    fn error_at_top(&mut self, field: &str, message: &str) {
        let mut issue = Issue::new(self.origin, Location::UNKNOWN, field, message);
        (issue.line, issue.column) = (1, 1);
        self.errors.push(issue);
    }

    /// Parses a spanned string with `parse`, recording its error.
    pub fn parse<T>(
        &mut self,
        text: &At<String>,
        field: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        parse(&text.value)
            .map_err(|message| self.error(text.referenced, field, message))
            .ok()
    }

    /// `value`, or an error at `parent` saying the key is missing.
    pub fn require<'v, T>(
        &mut self,
        value: &'v Option<At<T>>,
        parent: Location,
        field: &str,
    ) -> Option<&'v At<T>> {
        if value.is_none() {
            self.error(parent, field, "missing; this key is required");
        }
        value.as_ref()
    }
}

/// Validates `raw` into a [`Config`] and its warnings.
///
/// # Errors
///
/// Every problem found, in file order.
pub(super) fn validate(raw: &RawConfig, origin: &str) -> Result<(Config, Vec<Issue>), Vec<Issue>> {
    let mut check = Checker::new(origin);

    let interfaces = interfaces(&mut check, raw.interfaces.as_ref());
    let pin_path = path(
        &mut check,
        raw.pin_path.as_ref(),
        "pin_path",
        DEFAULT_PIN_PATH,
    );
    let control_socket = path(
        &mut check,
        raw.control_socket.as_ref(),
        "control_socket",
        DEFAULT_CONTROL_SOCKET,
    );
    let metrics_listen = match &raw.metrics_listen {
        Some(text) => check.parse(text, "metrics_listen", |t| {
            t.parse::<SocketAddr>()
                .map_err(|_| format!("{t:?} is not an address and port like 127.0.0.1:9641"))
        }),
        None => DEFAULT_METRICS_LISTEN.parse().ok(),
    };
    let flow_table_size = flow_table_size(&mut check, raw.flow_table_size.as_ref());
    let limits = super::limits::limits(&mut check, raw.limits.as_ref());
    let syn_guard = super::syn_guard::syn_guard(&mut check, raw.syn_guard.as_ref());
    let encap = encap(&mut check, raw.encap.as_ref());

    let mut pools = pools::pools(&mut check, &raw.pools, raw.encap.as_ref().map(|e| &e.value));
    super::routing_check::pool_policies(&mut check, &raw.pools, &mut pools);
    let tenants = super::routing_check::tenants(&mut check, &raw.tenants);
    let vips = vips::vips(&mut check, raw.vips.as_ref(), &pools, &tenants, limits);
    pools::default_check_ports(&mut check, &raw.pools, &mut pools, &vips);
    let announce = raw
        .announce
        .as_ref()
        .and_then(|raw| super::announce::announce(&mut check, raw));

    // A value is `None` only after its error was recorded.
    let (Some(metrics_listen), Some(encap), true) =
        (metrics_listen, encap, check.errors.is_empty())
    else {
        let mut errors = check.errors;
        errors.sort_by_key(|issue| (issue.line, issue.column));
        return Err(errors);
    };
    let config = Config {
        interfaces,
        pin_path,
        control_socket,
        metrics_listen,
        flow_table_size,
        limits,
        syn_guard,
        encap,
        vips,
        pools,
        announce,
        tenants,
    };
    let mut warnings = check.warnings;
    warnings.sort_by_key(|issue| (issue.line, issue.column));
    Ok((config, warnings))
}

fn interfaces(check: &mut Checker, raw: Option<&At<Vec<At<RawInterface>>>>) -> Vec<Interface> {
    let Some(raw) = raw.filter(|list| !list.value.is_empty()) else {
        let message = "missing; list at least one interface to attach to";
        match raw {
            Some(empty) => check.error(empty.referenced, "interfaces", message),
            None => check.error_at_top("interfaces", message),
        }
        return Vec::new();
    };

    let mut seen: Vec<Interface> = Vec::new();
    for (i, item) in raw.value.iter().enumerate() {
        let field = format!("interfaces[{i}].name");
        let Some(name) = check.require(&item.value.name, item.referenced, &field) else {
            continue;
        };
        if !is_interface_name(&name.value) {
            check.error(
                name.referenced,
                &field,
                format!("{:?} is not an interface name", name.value),
            );
        } else if seen.iter().any(|s| s.name == name.value) {
            check.error(
                name.referenced,
                &field,
                format!("interface {} is listed twice", name.value),
            );
        } else {
            seen.push(Interface {
                name: name.value.clone(),
                mode: item.value.mode,
            });
        }
    }
    seen
}

fn path(check: &mut Checker, raw: Option<&At<String>>, field: &str, default: &str) -> PathBuf {
    let Some(raw) = raw else {
        return PathBuf::from(default);
    };
    if !raw.value.starts_with('/') {
        check.error(
            raw.referenced,
            field,
            format!("{:?} is not an absolute path", raw.value),
        );
    }
    PathBuf::from(&raw.value)
}

fn flow_table_size(check: &mut Checker, raw: Option<&At<u32>>) -> u32 {
    let Some(raw) = raw else {
        return lb_common::DEFAULT_FLOW_CAPACITY;
    };
    if !FLOW_TABLE_RANGE.contains(&raw.value) {
        let message = format!("{} is outside {FLOW_TABLE_RANGE:?} flows", raw.value);
        check.error(raw.referenced, "flow_table_size", message);
    }
    raw.value
}

fn encap(check: &mut Checker, raw: Option<&At<RawEncap>>) -> Option<Encap> {
    let Some(raw) = raw else {
        let mtu = lb_common::DEFAULT_MTU;
        return Some(Encap {
            source_v4: None,
            source_v6: None,
            mtu,
            gateway_mac: None,
        });
    };
    let raw = &raw.value;

    let mut source = |text: Option<&At<String>>, field: &str, want_v4: bool| {
        let text = text?;
        let prefix = check.parse(text, field, values::prefix)?;
        if prefix.addr.is_ipv4() != want_v4 {
            let family = if want_v4 { "IPv4" } else { "IPv6" };
            check.error(
                text.referenced,
                field,
                format!("{:?} is not an {family} prefix", text.value),
            );
            return None;
        }
        // Backends drop packets from such sources as martians.
        if !values::is_unicast_source(prefix.addr) {
            let message = format!(
                "{:?} is not a unicast prefix (unspecified, loopback, multicast or broadcast)",
                text.value
            );
            check.error(text.referenced, field, message);
            return None;
        }
        Some((prefix, text.referenced))
    };
    let source_v4 = source(raw.source_v4.as_ref(), "encap.source_v4", true);
    let source_v6 = source(raw.source_v6.as_ref(), "encap.source_v6", false);
    if let Some((prefix, at)) = source_v6.filter(|(p, _)| p.host_bits() > 32) {
        let message = format!(
            "only the last 32 of the {} host bits vary between flows",
            prefix.host_bits()
        );
        check.warn(at, "encap.source_v6", message);
    }

    let mtu = raw.mtu.as_ref().map_or(lb_common::DEFAULT_MTU, |mtu| {
        if !MTU_RANGE.contains(&mtu.value) {
            let message = format!("{} is outside {MTU_RANGE:?} bytes", mtu.value);
            check.error(mtu.referenced, "encap.mtu", message);
        }
        mtu.value
    });
    let gateway_mac = match &raw.gateway_mac {
        Some(text) => Some(check.parse(text, "encap.gateway_mac", values::mac)?),
        None => None,
    };

    Some(Encap {
        source_v4: source_v4.map(|(p, _)| p),
        source_v6: source_v6.map(|(p, _)| p),
        mtu,
        gateway_mac,
    })
}

/// Whether the kernel would take `name` as an interface name, as its
/// `dev_valid_name` decides: 1 to IFNAMSIZ - 1 = 15 bytes, not `.` or
/// `..`, no `/`, `:` or whitespace.
fn is_interface_name(name: &str) -> bool {
    let bad_char = |c: char| c == '/' || c == ':' || c.is_whitespace() || c.is_control();
    !name.is_empty() && name.len() <= 15 && name != "." && name != ".." && !name.contains(bad_char)
}

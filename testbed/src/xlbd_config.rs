//! xlbd configs for a testbed: typed, rendered to the YAML xlbd reads
//! (schema in configs/full.yaml), and two small text edits for configs
//! written by hand (the demo's).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::plan;
use crate::testbed::Testbed;

/// The outer IPv4 source prefix xlbd encapsulates from.
pub const ENCAP_SOURCE_V4: &str = "10.255.0.0/24";
/// The outer IPv6 source prefix xlbd encapsulates from.
pub const ENCAP_SOURCE_V6: &str = "fd00:ffff::/112";
/// Where xlbd serves metrics: inside the LB namespace, so every testbed
/// can use the same port.
pub const METRICS_LISTEN: &str = "127.0.0.1:9641";

/// A whole xlbd config for one testbed (interface `eth0`, native mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XlbdConfig {
    /// bpffs directory of xlbd's pins: the testbed's pin directory.
    pub pin_path: PathBuf,
    /// xlbd's control socket, in the testbed's log directory.
    pub control_socket: PathBuf,
    /// The services.
    pub vips: Vec<VipSpec>,
    /// The backend pools the services name.
    pub pools: Vec<PoolSpec>,
}

/// One service: (address, port, protocol) steered to a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipSpec {
    /// Unique name, `[a-z0-9_-]`.
    pub name: String,
    /// The VIP, e.g. `plan::vip_v4(1)`.
    pub address: IpAddr,
    /// Port; 0 takes every port of the address.
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: Protocol,
    /// The pool's name.
    pub pool: String,
}

/// A VIP's transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// A pool of testbed backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    /// Unique name, `[a-z0-9_-]`.
    pub name: String,
    /// Its backends.
    pub backends: Vec<BackendSpec>,
    /// Its health check; `None` counts every backend as up.
    pub health_check: Option<HealthCheckSpec>,
    /// Slow-start window in milliseconds (0: off).
    pub slow_start_ms: u32,
}

/// One backend of a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    /// The backend's own address (IPv4 or IPv6).
    pub address: IpAddr,
    /// Relative share of new flows, 0..=10000.
    pub weight: u32,
}

impl BackendSpec {
    /// Backend `k` over IPv4 with `weight`.
    pub fn v4(k: usize, weight: u32) -> Self {
        BackendSpec {
            address: plan::backend_v4(k).into(),
            weight,
        }
    }

    /// Backend `k` over IPv6 with `weight`.
    pub fn v6(k: usize, weight: u32) -> Self {
        BackendSpec {
            address: plan::backend_v6(k).into(),
            weight,
        }
    }
}

/// A TCP health check (connect to the VIP's port on the backend).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthCheckSpec {
    /// Time between probes of a backend, in milliseconds.
    pub interval_ms: u32,
    /// How long one probe may take, in milliseconds.
    pub timeout_ms: u32,
    /// Successes in a row that mark a backend up.
    pub rise: u32,
    /// Failures in a row that mark a backend down.
    pub fall: u32,
}

impl HealthCheckSpec {
    /// The fast check the tests and the demo use: every 200 ms, 100 ms
    /// timeout, up after 2 successes, down after 3 failures (so a dead
    /// backend is marked down within about 3 × 200 ms).
    pub const FAST: HealthCheckSpec = HealthCheckSpec {
        interval_ms: 200,
        timeout_ms: 100,
        rise: 2,
        fall: 3,
    };
}

impl XlbdConfig {
    /// An empty config for `testbed`: its pin directory, a control socket
    /// in its log directory, no VIPs.
    pub fn for_testbed(testbed: &Testbed) -> Self {
        XlbdConfig {
            pin_path: testbed.pin_path().to_path_buf(),
            control_socket: testbed.log_dir().join("xlbd.sock"),
            vips: Vec::new(),
            pools: Vec::new(),
        }
    }

    /// Adds a VIP (builder style).
    pub fn vip(mut self, name: &str, address: IpAddr, port: u16, protocol: Protocol) -> Self {
        self.vips.push(VipSpec {
            name: name.to_owned(),
            address,
            port,
            protocol,
            pool: name.to_owned(),
        });
        self
    }

    /// Adds a pool (builder style).
    pub fn pool(
        mut self,
        name: &str,
        backends: &[BackendSpec],
        health_check: Option<HealthCheckSpec>,
    ) -> Self {
        self.pools.push(PoolSpec {
            name: name.to_owned(),
            backends: backends.to_vec(),
            health_check,
            slow_start_ms: 0,
        });
        self
    }

    /// The pool named `name`, to change it.
    ///
    /// # Errors
    /// When there is no such pool.
    pub fn pool_mut(&mut self, name: &str) -> Result<&mut PoolSpec> {
        match self.pools.iter_mut().find(|p| p.name == name) {
            Some(pool) => Ok(pool),
            None => bail!("pool {name} is not in the config"),
        }
    }

    /// The YAML text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# Rendered by xlb-testbed.");
        let _ = writeln!(out, "interfaces:\n  - name: eth0\n    mode: native");
        let _ = writeln!(out, "pin_path: {}", self.pin_path.display());
        let _ = writeln!(out, "control_socket: {}", self.control_socket.display());
        let _ = writeln!(out, "metrics_listen: {METRICS_LISTEN}");
        let _ = writeln!(
            out,
            "encap:\n  source_v4: {ENCAP_SOURCE_V4}\n  source_v6: \"{ENCAP_SOURCE_V6}\""
        );
        let _ = writeln!(out, "vips:");
        for vip in &self.vips {
            let protocol = match vip.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
            };
            let _ = writeln!(
                out,
                "  - {{name: {}, address: \"{}\", port: {}, protocol: {protocol}, pool: {}}}",
                vip.name, vip.address, vip.port, vip.pool
            );
        }
        let _ = writeln!(out, "pools:");
        for pool in &self.pools {
            let _ = writeln!(out, "  {}:\n    backends:", pool.name);
            for backend in &pool.backends {
                let _ = writeln!(
                    out,
                    "      - {{address: \"{}\", weight: {}}}",
                    backend.address, backend.weight
                );
            }
            if let Some(check) = pool.health_check {
                let _ = writeln!(
                    out,
                    "    health_check: {{kind: tcp, interval: {}ms, timeout: {}ms, \
                     rise: {}, fall: {}}}",
                    check.interval_ms, check.timeout_ms, check.rise, check.fall
                );
            }
            if pool.slow_start_ms > 0 {
                let _ = writeln!(out, "    slow_start: {}ms", pool.slow_start_ms);
            }
        }
        out
    }
}

/// `yaml` with top-level key `key` set to `value`: its line replaced when
/// present (a one-line value), else appended.
pub fn set_top_level_key(yaml: &str, key: &str, value: &str) -> String {
    let prefix = format!("{key}:");
    let line = format!("{key}: {value}");
    let mut found = false;
    let mut lines: Vec<String> = yaml
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                found = true;
                line.clone()
            } else {
                l.to_owned()
            }
        })
        .collect();
    if !found {
        lines.push(line);
    }
    lines.join("\n") + "\n"
}

/// `yaml` with the weight of the backend at `address` set to `weight`,
/// in the block-style list item `- address: ADDRESS` and its `weight:`
/// line (added after the address line when missing). The rest of the
/// line, comments included, stays.
///
/// # Errors
/// When no list item has that address.
pub fn set_backend_weight(yaml: &str, address: IpAddr, weight: u32) -> Result<String> {
    let mut lines: Vec<String> = yaml.lines().map(str::to_owned).collect();
    let item = format!("- address: {address}");
    let Some(start) = lines.iter().position(|l| {
        let t = l.trim_start();
        t == item || t.starts_with(&format!("{item} "))
    }) else {
        bail!("no backend `{item}` in the config");
    };
    // The item's keys are indented like `address`, past the dash.
    let indent = lines[start].find('-').map_or(0, |i| i + 2);
    let mut end = start + 1;
    while end < lines.len() {
        let line = &lines[end];
        let depth = line.len() - line.trim_start().len();
        let blank = line.trim().is_empty() || line.trim_start().starts_with('#');
        if !blank && depth < indent {
            break;
        }
        if !blank && depth == indent && line.trim_start().starts_with("weight:") {
            let mut new = format!("{}weight: {weight}", " ".repeat(indent));
            // Keep a trailing comment, in its column when there is room.
            if let Some(column) = line.find('#') {
                let width = column.max(new.len() + 1);
                new = format!("{new:<width$}{}", &line[column..]);
            }
            lines[end] = new;
            return Ok(lines.join("\n") + "\n");
        }
        end += 1;
    }
    lines.insert(start + 1, format!("{}weight: {weight}", " ".repeat(indent)));
    Ok(lines.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_keys_are_replaced_or_appended() {
        let yaml = "interfaces: [{name: eth0}]\npin_path: /x\n";
        let out = set_top_level_key(yaml, "pin_path", "/y");
        assert_eq!(out, "interfaces: [{name: eth0}]\npin_path: /y\n");
        let out = set_top_level_key(&out, "control_socket", "/s");
        assert!(out.ends_with("pin_path: /y\ncontrol_socket: /s\n"), "{out}");
    }

    #[test]
    fn backend_weight_changes_only_that_backend() {
        let yaml = "pools:\n  web:\n    backends:\n      - address: 10.0.0.11\n        \
                    weight: 100\n      - address: 10.0.0.12\n        weight: 200       # twice\n";
        let out = set_backend_weight(yaml, "10.0.0.12".parse().expect("ip"), 50).expect("set");
        assert!(out.contains("10.0.0.11\n        weight: 100\n"), "{out}");
        assert!(out.contains("        weight: 50"), "{out}");
        assert!(out.contains("# twice"), "{out}");
        let out = set_backend_weight(yaml, "10.0.0.11".parse().expect("ip"), 7).expect("set");
        assert!(out.contains("10.0.0.11\n        weight: 7\n"), "{out}");
    }

    #[test]
    fn backend_weight_is_added_when_missing() {
        let yaml = "    backends:\n      - address: 10.0.0.13\n        state: drain\n";
        let out = set_backend_weight(yaml, "10.0.0.13".parse().expect("ip"), 300).expect("set");
        assert_eq!(
            out,
            "    backends:\n      - address: 10.0.0.13\n        weight: 300\n        state: drain\n"
        );
        assert!(set_backend_weight(yaml, "10.0.0.99".parse().expect("ip"), 1).is_err());
    }
}

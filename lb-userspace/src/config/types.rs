//! The validated config: typed values only, every default filled in.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::maglev::MaglevBackend;

/// A validated config. Build one with [`Config::load`] or
/// [`Config::from_str`]; no other code reads the YAML.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    /// Interfaces the XDP program is attached to, at least one.
    pub interfaces: Vec<Interface>,
    /// bpffs directory where xlbd pins its maps and links.
    pub pin_path: PathBuf,
    /// Unix socket where xlbd takes xlbctl's commands.
    pub control_socket: PathBuf,
    /// Address of the Prometheus endpoint.
    pub metrics_listen: SocketAddr,
    /// Capacity of the `FLOWS` connection table, in flows.
    pub flow_table_size: u32,
    /// VIPs and backend slots the maps are sized for (default 64 and
    /// 4096); takes effect when xlbd starts.
    // Left out of the canonical form at the defaults, so versions of
    // configs without it stay what they were.
    #[serde(skip_serializing_if = "crate::dataplane::Limits::is_default")]
    pub limits: crate::dataplane::Limits,
    /// Each CPU's budget of new flows entered by SYNs.
    pub syn_guard: super::syn_guard::SynGuard,
    /// How packets are carried to backends.
    pub encap: Encap,
    /// Services, in file order; a VIP's index here is not its kernel id.
    pub vips: Vec<VipConfig>,
    /// Backend pools by name.
    pub pools: BTreeMap<String, PoolConfig>,
    /// Where to announce served VIPs; `None` (the default) announces none.
    // Left out of the canonical form when unset, so versions of configs
    // without it stay what they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub announce: Option<super::announce::Announce>,
    /// New-flow limits of tenant classes, by name; default none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tenants: BTreeMap<String, super::routing::TenantLimit>,
}

/// One interface xlb attaches to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// Kernel name, as in `eth0`.
    pub name: String,
    /// How the XDP program is attached.
    pub mode: AttachMode,
}

/// XDP attach mode. There is no automatic fall-back: a driver without
/// native XDP fails the attach unless `generic` was asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`).
    #[default]
    Native,
    /// In the generic network stack (`XDP_FLAGS_SKB_MODE`): slower, works
    /// on any device.
    Generic,
}

/// Encapsulation settings: the outer header xlb puts on forwarded packets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Encap {
    /// Outer IPv4 source prefix; present whenever a backend is IPv4.
    pub source_v4: Option<Prefix>,
    /// Outer IPv6 source prefix; present whenever a backend is IPv6. Only
    /// the last 32 bits of its host part vary.
    pub source_v6: Option<Prefix>,
    /// Largest outer L3 packet the interface sends, in bytes.
    pub mtu: u32,
    /// Next-hop MAC used when the FIB has no neighbour for a backend.
    pub gateway_mac: Option<[u8; 6]>,
}

/// An address prefix whose host bits are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Prefix {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub len: u8,
}

impl Prefix {
    /// Bits of the address left to the host: 32 or 128 minus `len`.
    pub fn host_bits(&self) -> u8 {
        let width = if self.addr.is_ipv4() { 32 } else { 128 };
        width - self.len
    }
}

/// One service: traffic to (address, port, protocol) goes to `pool`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VipConfig {
    /// Unique name, `[a-z0-9_-]`; used in logs and metric labels.
    pub name: String,
    /// Destination address clients use.
    pub address: IpAddr,
    /// Destination port; 0 means every port of the address.
    pub port: u16,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Name of the pool serving the VIP; it has at least one backend.
    pub pool: String,
    /// Hash the client address only, so a client always reaches the same
    /// backend.
    pub source_affinity: bool,
    /// Slots in the VIP's Maglev table, a prime up to `MAX_TABLE_SIZE`.
    /// Every pool table of the VIP has this size.
    pub table_size: u32,
    /// Pools serving other destination ports of the address, by port;
    /// default none. Never the VIP's own port, never 0.
    // Left out of the canonical form when unset (as the other policy
    // keys), so versions of configs without them stay what they were.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub port_pools: BTreeMap<u16, String>,
    /// Rules by client prefix, each prefix once; default none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_rules: Vec<super::routing::SourceRule>,
    /// A share of new flows sent to another pool; default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<super::routing::Canary>,
}

impl VipConfig {
    /// Every pool the VIP's flows can reach, its own first, each once:
    /// port pools, source-rule pools, then the canary.
    pub fn reachable_pools(&self) -> Vec<&str> {
        let mut pools = vec![self.pool.as_str()];
        let port_pools = self.port_pools.values().map(String::as_str);
        let rule_pools = self.source_rules.iter().filter_map(|rule| rule.pool());
        let canary = self.canary.iter().map(|canary| canary.pool.as_str());
        for pool in port_pools.chain(rule_pools).chain(canary) {
            if !pools.contains(&pool) {
                pools.push(pool);
            }
        }
        pools
    }
}

/// Transport protocol of a VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// The IP protocol number (`PROTO_TCP` or `PROTO_UDP`).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => lb_common::PROTO_TCP,
            Protocol::Udp => lb_common::PROTO_UDP,
        }
    }

    /// Lowercase name, as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A named set of backends.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoolConfig {
    /// Backends in file order; addresses are unique within the pool.
    pub backends: Vec<BackendConfig>,
    /// Active health check, if any (acted on by a later release).
    pub health_check: Option<HealthCheck>,
    /// Where backends publish their load, if anywhere: it lowers the
    /// weights of loaded backends.
    pub load_signal: Option<LoadSignal>,
    /// Panic mode: when the share of the pool's ready backends that pass
    /// their checks falls below this, new flows go to all of them rather
    /// than overload the few. Zero (the default) turns it off.
    pub panic_threshold: Share,
    /// How long a backend that comes up (added, or back from down) takes to
    /// ramp from a tenth of its weight to all of it. Zero (the default)
    /// turns slow start off.
    pub slow_start: Duration,
    /// How many backends the pool should have, and who brings them in
    /// and out; `None` (the default) leaves the pool as configured.
    pub autoscale: Option<super::scaling::Autoscale>,
    /// Pool that takes this pool's new flows while it has no usable
    /// backend; default none. Never the pool itself; one hop only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Prefer the backends with the lowest `cost` label; default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_aware: Option<super::routing::CostAware>,
}

impl PoolConfig {
    /// The backends as the Maglev generator takes them, in the same order:
    /// backends that are not `ready` get weight 0, so no new flows.
    pub fn maglev_backends(&self) -> Vec<MaglevBackend> {
        let weight = |b: &BackendConfig| if b.takes_new_flows() { b.weight } else { 0 };
        let backend = |b: &BackendConfig| MaglevBackend {
            addr: b.address,
            weight: weight(b),
        };
        self.backends.iter().map(backend).collect()
    }
}

/// One backend of a pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackendConfig {
    /// Where packets are sent (the outer destination).
    pub address: IpAddr,
    /// Relative share of new flows, 0..=10000; 0 takes no new flows.
    pub weight: u32,
    /// Operator's intent for the backend.
    pub state: BackendState,
    /// Free-form labels (region, model, GPU type, cost...).
    pub labels: BTreeMap<String, String>,
    /// Held back for the pool's standby autoscaler, which brings it in
    /// and out of service; out of service until then. Default false.
    pub standby: bool,
}

impl BackendConfig {
    /// Whether new flows may be sent here: `ready` with a weight above 0.
    pub fn takes_new_flows(&self) -> bool {
        self.state == BackendState::Ready && self.weight > 0
    }
}

/// Operator's intent for a backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendState {
    /// Takes new flows by weight.
    #[default]
    Ready,
    /// Takes no new flows; flows it already has stay with it.
    Drain,
    /// Down for maintenance: takes no traffic at all.
    Maint,
}

/// An active health check of a pool's backends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    /// What is probed.
    pub kind: CheckKind,
    /// Time between probes of one backend.
    pub interval: Duration,
    /// How long a probe may take before it counts as failed.
    pub timeout: Duration,
    /// Consecutive successes that mark a down backend up.
    pub rise: u32,
    /// Consecutive failures that mark an up backend down.
    pub fall: u32,
    /// Port probed on each backend: as written, else the port of the first
    /// VIP served by the pool. `None` only when no VIP serves the pool and
    /// none was written; such a pool is not probed.
    pub port: Option<u16>,
}

/// What a health check probes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum CheckKind {
    /// A TCP connect to the backend's port.
    Tcp,
    /// An HTTP/1.1 GET of `path`; redirects are never followed.
    Http {
        /// Request path, starting with `/`.
        path: String,
        /// Status codes that count as healthy.
        expect_status: StatusCodes,
        /// Text the body must contain (within its first 64 KiB), if any.
        body_contains: Option<String>,
    },
}

/// A set of HTTP status codes, as inclusive ranges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusCodes {
    ranges: Vec<(u16, u16)>,
}

impl StatusCodes {
    /// The codes in `ranges`, each `(first, last)` inclusive.
    pub(super) fn from_ranges(ranges: Vec<(u16, u16)>) -> Self {
        Self { ranges }
    }

    /// Whether `code` is in the set.
    pub fn contains(&self, code: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(first, last)| (first..=last).contains(&code))
    }
}

impl Default for StatusCodes {
    /// 200-399: success and redirects (which are not followed).
    fn default() -> Self {
        Self::from_ranges(vec![(200, 399)])
    }
}

impl std::fmt::Display for StatusCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, &(first, last)) in self.ranges.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            if first == last {
                write!(f, "{comma}{first}")?;
            } else {
                write!(f, "{comma}{first}-{last}")?;
            }
        }
        Ok(())
    }
}

/// A share between 0 and 1, kept in basis points (1/10 000) so that
/// configs compare exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Share {
    basis_points: u16,
}

impl Share {
    /// Nothing: a feature turned off.
    pub const ZERO: Share = Share { basis_points: 0 };
    /// Everything.
    pub const ONE: Share = Share {
        basis_points: 10_000,
    };

    /// `basis_points` / 10 000, or `None` above 10 000.
    pub fn from_basis_points(basis_points: u16) -> Option<Self> {
        (basis_points <= 10_000).then_some(Self { basis_points })
    }

    /// The share in basis points, 0..=10 000.
    pub fn basis_points(self) -> u16 {
        self.basis_points
    }

    /// Whether the share is zero.
    pub fn is_zero(self) -> bool {
        self.basis_points == 0
    }
}

/// Where a pool's backends publish their load, and how it bends their
/// weights (see `xlb::load` for the formula).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadSignal {
    /// Metric name as exposed, colons included (`vllm:kv_cache_usage_perc`).
    /// Default `DCGM_FI_DEV_GPU_UTIL`.
    pub metric: String,
    /// Labels a sample must have (`gpu: "0"`), or must not have when the
    /// value starts with `!` (`mode: "!idle"`). Default: none.
    pub labels: BTreeMap<String, String>,
    /// How samples become a load. Default `gauge`.
    pub kind: LoadKind,
    /// The value (per second for `rate`) that means 100 % load. Default 100.
    pub scale: f64,
    /// Load (0..1) above which the weight is lowered. Default 0.7.
    pub target: f64,
    /// Port of the metrics endpoint on each backend. Default 9400.
    pub port: u16,
    /// HTTP path of the load report, starting with `/`.
    pub url_path: String,
    /// Time between reads of one backend.
    pub interval: Duration,
    /// How long a read may take.
    pub timeout: Duration,
    /// Weight of a new reading in the moving average, in (0, 1]. Default 0.5.
    pub ewma_alpha: f64,
    /// Lowest factor on the configured weight, in (0, 1]. Default 0.1.
    pub min_weight_factor: f64,
    /// Highest factor on the configured weight, at least the lowest, at
    /// most 1. Default 1.
    pub max_weight_factor: f64,
    /// Smallest factor change that rebuilds the tables. Default 0.1.
    pub step: f64,
    /// Shortest time between two weight changes of a pool. Default 5s.
    pub min_interval: Duration,
    /// Largest factor change of one backend at one rebuild, which bounds
    /// the share of table slots one rebuild moves. Default 0.2.
    pub max_moved_share: f64,
    /// How long the last good weight holds when readings fail, before the
    /// configured weight returns. Default 15s.
    pub grace: Duration,
}

/// How the matching samples of a load signal become one value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadKind {
    /// The mean of the matching samples, as read.
    #[default]
    Gauge,
    /// The per-second increase of the sum of the matching samples between
    /// two reads (for counters like `node_cpu_seconds_total`).
    Rate,
}

//! What the maps should hold, in the data plane's own terms: the config
//! boiled down to services, backends and settings, before ids are given.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use lb_common::{BACKEND_F_IN_TABLE, BACKEND_F_UP, Settings, VipKey};

/// The whole desired content of the maps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredState {
    /// Services, in config order.
    pub vips: Vec<DesiredVip>,
    /// `SETTINGS[0]`.
    pub settings: Settings,
    /// Each VIP's routing policy, by VIP name; VIPs without one are not
    /// listed.
    pub policy: BTreeMap<String, DesiredPolicy>,
    /// Each pool's fallback pool.
    pub fallback: BTreeMap<String, String>,
    /// Tenant classes and their new-flow budgets, by name.
    pub tenants: BTreeMap<String, crate::config::TenantLimit>,
}

/// A VIP's canary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCanary {
    /// The canary pool.
    pub pool: String,
    /// Share of new flows in force: configured, or set by the operator
    /// (`xlbctl vip split`) or a rollback.
    pub share: crate::config::Share,
    /// When to roll back to 0 on its own.
    pub rollback: Option<crate::config::Rollback>,
}

/// The routing policy of one VIP, by pool names; the plan gives them ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredPolicy {
    /// The canary, if the VIP has one.
    pub canary: Option<DesiredCanary>,
    /// Client prefixes and what they get.
    pub source_rules: Vec<crate::config::SourceRule>,
}

/// One service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredVip {
    /// Name from the config, for logs.
    pub name: String,
    /// Its `VIP_KIND_SERVICE` key; identifies the VIP across reloads.
    pub key: VipKey,
    /// `VIP_F_*` bits other than `VIP_F_NO_FRAGMENTS`.
    pub flags: u32,
    /// Maglev table size, a prime.
    pub table_size: u32,
    /// Name of the pool its backends come from (health is kept per pool).
    pub pool: String,
    /// The pool's backends.
    pub backends: Vec<DesiredBackend>,
    /// For a table other than the VIP's own (a pool its policy reaches):
    /// the VIP's name. `key` is then a table key (`TABLE_KEY_KIND`), never
    /// written to `VIPS`, and `name` is `VIP/POOL`.
    pub owner: Option<String>,
    /// Destination ports (port pools) whose `VIPS` keys name this table.
    pub ports: Vec<u16>,
}

/// `VipKey::kind` of a table key: xlbd's own name for a table other than a
/// VIP's default one, to give it an id. Never written to `VIPS`.
pub const TABLE_KEY_KIND: u8 = 0xff;

impl DesiredVip {
    /// The key naming VIP `service`'s table of `pool`: the service key with
    /// `TABLE_KEY_KIND` and a 24-bit hash of the pool name.
    pub fn table_key(service: &VipKey, pool: &str) -> VipKey {
        let hash = pool.bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let [a, b, c, _] = hash.to_le_bytes();
        VipKey {
            kind: TABLE_KEY_KIND,
            _pad: [a, b, c],
            ..*service
        }
    }
}

/// One backend of one VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DesiredBackend {
    /// Backend address; identifies it within its VIP across reloads.
    pub addr: IpAddr,
    /// Relative share of new flows.
    pub weight: u32,
    /// Operator's state.
    pub state: AdminState,
}

/// The operator's say on a backend, from the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminState {
    /// Takes new flows (when healthy and weighted).
    Ready,
    /// Keeps its tracked flows, takes no new ones.
    Drain,
    /// Out of service: its tracked flows move elsewhere.
    Maint,
}

/// Backends found down by health checks, by (pool, address). Kept by the
/// daemon across reloads, so a backend that was down stays down until its
/// checks pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    down: HashSet<(String, IpAddr)>,
}

impl Health {
    /// Whether `addr` in `pool` passes its checks (or is not checked).
    pub fn is_up(&self, pool: &str, addr: IpAddr) -> bool {
        !self.down.contains(&(pool.to_owned(), addr))
    }

    /// Records the result of `addr`'s checks; returns whether it flipped.
    pub fn set(&mut self, pool: &str, addr: IpAddr, up: bool) -> bool {
        let key = (pool.to_owned(), addr);
        if up {
            self.down.remove(&key)
        } else {
            self.down.insert(key)
        }
    }
}

impl DesiredBackend {
    /// Whether this backend may hold Maglev slots.
    pub fn takes_new_flows(&self, healthy: bool) -> bool {
        self.state == AdminState::Ready && self.weight > 0 && healthy
    }

    /// Its `BACKEND_F_*` bits, given its health and whether it got slots.
    pub fn flags(&self, healthy: bool, in_table: bool) -> u32 {
        let mut flags = 0;
        if healthy && self.state != AdminState::Maint {
            flags |= BACKEND_F_UP;
            if in_table {
                flags |= BACKEND_F_IN_TABLE;
            }
        }
        flags
    }
}

//! The services as xlbd runs them, by name and id, for xlbctl and the
//! metrics: what the pinned maps cannot say (names, pools, weights,
//! operator overrides), joined with the ids the maps use.
//!
//! This is part of the status file, xlbctl's stable source of names.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::config::BackendState;
use crate::dataplane::desired::{AdminState, DesiredState};
use crate::dataplane::live::{LiveBackend, key_addr_to_ip};
use crate::dataplane::{Health, Live};

use super::overrides::{Override, Overrides};

/// One VIP and its backends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipView {
    /// Name from the config.
    pub name: String,
    /// Kernel id (index of `VIP_STATS` and `MAGLEV`).
    pub id: u32,
    /// Destination address.
    pub address: IpAddr,
    /// Destination port; 0 for every port.
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The pool serving it.
    pub pool: String,
    /// Slots in its Maglev table.
    pub table_size: u32,
    /// Which half of its `MAGLEV` region is live (0 or 1); flips on every
    /// table swap.
    pub table_half: u32,
    /// Its backends, in config order.
    pub backends: Vec<BackendView>,
}

/// One backend of one VIP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendView {
    /// Kernel id (index of `BACKENDS` and `BACKEND_STATS`).
    pub id: u32,
    /// Backend address.
    pub address: IpAddr,
    /// Weight written in the config.
    pub weight: u32,
    /// State written in the config.
    pub state: BackendState,
    /// The operator's override, if any (`xlbctl backend drain` and co).
    pub operator: Option<Override>,
    /// The state in force: the override's, else the config's.
    pub effective_state: BackendState,
    /// The weight the Maglev table was built with: 0 when the backend takes
    /// no new flows (not ready, down, or weight 0).
    pub effective_weight: u32,
    /// Whether its health checks pass (true when not checked).
    pub healthy: bool,
    /// `BACKEND_F_*` bits of its `BACKENDS` entry.
    pub flags: u32,
}

/// The view of every configured VIP, joined with the ids in `live`.
/// A VIP or backend not (yet) in the maps is left out.
pub fn build(
    desired: &DesiredState,
    overrides: &Overrides,
    live: &Live,
    health: &Health,
) -> Vec<VipView> {
    // Indexed once: a scan of every backend per backend is quadratic, and
    // 1000 VIPs x 100 backends took minutes per view.
    let live_backends: HashMap<(u32, IpAddr), (u32, &LiveBackend)> = live
        .backends
        .iter()
        .map(|(&id, b)| ((b.entry.vip_id, b.addr), (id, b)))
        .collect();
    let mut views = Vec::with_capacity(desired.vips.len());
    for vip in &desired.vips {
        let Some(live_vip) = live.vips.get(&vip.key) else {
            continue;
        };
        let id = live_vip.value.id;
        let Some(address) = key_addr_to_ip(&vip.key.addr, vip.key.family) else {
            continue;
        };
        let mut backends = Vec::with_capacity(vip.backends.len());
        for backend in &vip.backends {
            let Some(&(backend_id, live_backend)) = live_backends.get(&(id, backend.addr)) else {
                continue;
            };
            let operator = overrides.get(&vip.pool, backend.addr).cloned();
            let effective = overrides.overlay_backend(&vip.pool, backend);
            let healthy = health.is_up(&vip.pool, backend.addr);
            // The weight the table was last built with: slow start, panic
            // mode and load factors included; the overlaid one until then.
            let built = live_backend
                .config
                .map_or(effective.weight, |(weight, _)| weight);
            let effective_weight = if effective.takes_new_flows(healthy) {
                built
            } else {
                0
            };
            backends.push(BackendView {
                id: backend_id,
                address: backend.addr,
                weight: backend.weight,
                state: state_name(backend.state),
                operator,
                effective_state: state_name(effective.state),
                effective_weight,
                healthy,
                flags: live_backend.entry.flags,
            });
        }
        views.push(VipView {
            name: vip.name.clone(),
            id,
            address,
            port: u16::from_be(vip.key.port_be),
            protocol: protocol_name(vip.key.proto),
            pool: vip.pool.clone(),
            table_size: live_vip.value.table_size,
            table_half: live_vip.value.table_half,
            backends,
        });
    }
    views
}

/// The config's name for a data-plane state.
pub fn state_name(state: AdminState) -> BackendState {
    match state {
        AdminState::Ready => BackendState::Ready,
        AdminState::Drain => BackendState::Drain,
        AdminState::Maint => BackendState::Maint,
    }
}

/// `tcp`, `udp`, or the number.
pub fn protocol_name(proto: u8) -> String {
    match proto {
        lb_common::PROTO_TCP => "tcp".to_owned(),
        lb_common::PROTO_UDP => "udp".to_owned(),
        other => other.to_string(),
    }
}

//! Services and backends as xlbctl shows them: ids, addresses and counters
//! from the maps, joined with names and weights from the status file when
//! there is one.

use std::collections::HashMap;
use std::net::IpAddr;

use lb_common::{BACKEND_F_IN_TABLE, BACKEND_F_UP, TrafficCounters};
use serde::Serialize;

use crate::daemon::overrides::Override;
use crate::daemon::view::{BackendView, VipView, protocol_name};
use crate::dataplane::live::key_addr_to_ip;
use crate::dataplane::{Live, Maps, counters};
use crate::metrics::state_label;

/// Packets, bytes and new flows, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Packets forwarded.
    pub packets: u64,
    /// Bytes forwarded (L3, before encapsulation).
    pub bytes: u64,
    /// Flows newly tracked.
    pub new_flows: u64,
}

impl From<TrafficCounters> for Traffic {
    fn from(t: TrafficCounters) -> Self {
        Self {
            packets: t.packets,
            bytes: t.bytes,
            new_flows: t.new_flows,
        }
    }
}

/// One VIP.
#[derive(Clone, Debug, Serialize)]
pub struct Service {
    /// Config name; `None` without the status file.
    pub name: Option<String>,
    /// Kernel id.
    pub id: u32,
    /// Address.
    pub address: IpAddr,
    /// Port; 0 for every port.
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Pool; `None` without the status file.
    pub pool: Option<String>,
    /// Maglev table size.
    pub table_size: u32,
    /// Live half of the table (0 or 1).
    pub table_half: u32,
    /// Flows tracked for it now.
    pub flows: u64,
    /// Its traffic.
    pub traffic: Traffic,
    /// Its backends.
    pub backends: Vec<Member>,
}

/// One backend of one VIP.
#[derive(Clone, Debug, Serialize)]
pub struct Member {
    /// Kernel id.
    pub id: u32,
    /// Address.
    pub address: IpAddr,
    /// Weight in the config; `None` without the status file.
    pub weight: Option<u32>,
    /// Weight the table was built with; `None` without the status file.
    pub effective_weight: Option<u32>,
    /// `ready`, `drain` or `maint` in force; without the status file, from
    /// the flags: `ready` (in the table), `drain` (up, no slots) or `down`.
    pub state: String,
    /// The operator's override, if any.
    pub operator: Option<Override>,
    /// Passes its health checks (unknown without the status file: true).
    pub healthy: bool,
    /// `BACKEND_F_UP`: keeps its tracked flows.
    pub up: bool,
    /// `BACKEND_F_IN_TABLE`: holds Maglev slots.
    pub in_table: bool,
    /// Flows tracked to it now.
    pub flows: u64,
    /// Its traffic.
    pub traffic: Traffic,
}

/// Every VIP in the maps, in the status file's order then by id.
///
/// # Errors
///
/// When a map cannot be read.
pub fn services(maps: &Maps, views: &[VipView], count_flows: bool) -> anyhow::Result<Vec<Service>> {
    let live = Live::read(maps)?;
    let (vip_flows, backend_flows) = if count_flows {
        flow_counts(maps)?
    } else {
        Default::default()
    };
    let mut entries: Vec<(u32, IpAddr, u16, String, lb_common::Vip)> = live
        .vips
        .iter()
        .map(|(key, vip)| {
            let address =
                key_addr_to_ip(&key.addr, key.family).unwrap_or(IpAddr::from([0, 0, 0, 0]));
            let port = u16::from_be(key.port_be);
            (
                vip.value.id,
                address,
                port,
                protocol_name(key.proto),
                vip.value,
            )
        })
        .collect();
    // The pool tables of VIPs with a routing policy have no key of their
    // own in VIPS: the status file names them (`VIP/POOL`), POOL_TABLES
    // holds their values.
    for view in views {
        if entries.iter().any(|e| e.0 == view.id) {
            continue;
        }
        let Ok(value) = maps.pool_tables.get(&view.id, 0) else {
            continue;
        };
        if value.table_size == 0 {
            continue;
        }
        entries.push((
            view.id,
            view.address,
            view.port,
            view.protocol.clone(),
            value,
        ));
    }
    let mut services = Vec::new();
    for (id, address, port, protocol, value) in entries {
        let view = views.iter().find(|v| v.id == id);
        let mut backends = Vec::new();
        for (&backend_id, backend) in live.backends.iter().filter(|(_, b)| b.entry.vip_id == id) {
            let bview = view.and_then(|v| v.backends.iter().find(|b| b.id == backend_id));
            let flags = backend.entry.flags;
            backends.push(Member {
                id: backend_id,
                address: backend.addr,
                weight: bview.map(|b| b.weight),
                effective_weight: bview.map(|b| b.effective_weight),
                state: member_state(bview, flags),
                operator: bview.and_then(|b| b.operator.clone()),
                healthy: bview.is_none_or(|b| b.healthy),
                up: flags & BACKEND_F_UP != 0,
                in_table: flags & BACKEND_F_IN_TABLE != 0,
                flows: backend_flows.get(&backend_id).copied().unwrap_or(0),
                traffic: counters::backend_traffic_of(maps, backend_id)?.into(),
            });
        }
        if let Some(view) = view {
            let rank = |m: &Member| view.backends.iter().position(|b| b.id == m.id);
            backends.sort_by_key(|m| (rank(m).unwrap_or(usize::MAX), m.id));
        }
        services.push(Service {
            name: view.map(|v| v.name.clone()),
            id,
            address,
            port,
            protocol,
            pool: view.map(|v| v.pool.clone()),
            table_size: value.table_size,
            table_half: value.table_half,
            flows: vip_flows.get(&id).copied().unwrap_or(0),
            traffic: counters::vip_traffic_of(maps, id)?.into(),
            backends,
        });
    }
    let rank = |s: &Service| views.iter().position(|v| v.id == s.id);
    services.sort_by_key(|s| (rank(s).unwrap_or(usize::MAX), s.id));
    Ok(services)
}

fn member_state(view: Option<&BackendView>, flags: u32) -> String {
    if let Some(view) = view {
        return state_label(view.effective_state).to_owned();
    }
    match (flags & BACKEND_F_UP != 0, flags & BACKEND_F_IN_TABLE != 0) {
        (true, true) => "ready",
        (true, false) => "drain",
        _ => "down",
    }
    .to_owned()
}

/// Tracked flows per VIP id and per backend id.
///
/// # Errors
///
/// When `FLOWS` cannot be walked.
pub fn flow_counts(maps: &Maps) -> anyhow::Result<(HashMap<u32, u64>, HashMap<u32, u64>)> {
    let mut vips = HashMap::new();
    let mut backends = HashMap::new();
    for (_, flow) in counters::flows(maps)? {
        *vips.entry(flow.vip_id).or_default() += 1;
        *backends.entry(flow.backend_id).or_default() += 1;
    }
    Ok((vips, backends))
}

/// `ADDRESS:PORT/PROTO`, bracketing IPv6.
pub fn endpoint(address: IpAddr, port: u16, protocol: &str) -> String {
    match address {
        IpAddr::V6(v6) => format!("[{v6}]:{port}/{protocol}"),
        IpAddr::V4(v4) => format!("{v4}:{port}/{protocol}"),
    }
}

/// The service's name, or its endpoint when the name is unknown.
pub fn label(service: &Service) -> String {
    service
        .name
        .clone()
        .unwrap_or_else(|| endpoint(service.address, service.port, &service.protocol))
}

//! Typed handles on the maps xlbd owns.

use aya::Ebpf;
use aya::maps::{Array, HashMap, LpmTrie, Map, MapData, MapError, PerCpuArray};
use lb_common::maps::{
    BACKEND_STATS, BACKENDS, FLOW_INSERTS, FLOWS, MAGLEV, POLICY_STATS, POOL_TABLES, SETTINGS,
    SOURCE_RULES, STATS, TENANT_LIMITS, VIP_ADDRS, VIP_STATS, VIPS,
};
use lb_common::{
    Backend, Flow, FlowKey, PolicyCounters, Settings, SourceRule, SourceRuleKey, TenantLimit,
    TrafficCounters, Vip, VipKey,
};

use super::pins::PinDir;
use super::{DataplaneError, Limits};

/// The `xlb` program's maps, typed per `lb_common`.
pub struct Maps {
    /// Services by (address, port, protocol), and address keys.
    pub vips: HashMap<MapData, VipKey, Vip>,
    /// Bitmap of VIP addresses (`lb_common::vip_filter_bit`).
    pub vip_addrs: Array<MapData, u64>,
    /// Backend slots by backend id.
    pub backends: Array<MapData, Backend>,
    /// Two Maglev halves per VIP, of backend ids.
    pub maglev: Array<MapData, u32>,
    /// Tracked connections.
    pub flows: HashMap<MapData, FlowKey, Flow>,
    /// Node-wide settings, one entry.
    pub settings: Array<MapData, Settings>,
    /// Packets by outcome (`lb_common::Stat`), per CPU.
    pub stats: PerCpuArray<MapData, u64>,
    /// Flows entered in `FLOWS`, one entry, per CPU.
    pub flow_inserts: PerCpuArray<MapData, u64>,
    /// Traffic by VIP id, per CPU.
    pub vip_stats: PerCpuArray<MapData, TrafficCounters>,
    /// Traffic by backend id, per CPU.
    pub backend_stats: PerCpuArray<MapData, TrafficCounters>,
    /// Every table's `Vip` value, by table id.
    pub pool_tables: Array<MapData, Vip>,
    /// Client prefixes per service table.
    pub source_rules: LpmTrie<MapData, SourceRuleKey, SourceRule>,
    /// New-flow budgets by tenant class id.
    pub tenant_limits: Array<MapData, TenantLimit>,
    /// What the routing policy did, by table id, per CPU.
    pub policy_stats: PerCpuArray<MapData, PolicyCounters>,
}

impl Maps {
    /// The room the id-indexed maps really have (pinned maps keep the
    /// sizes they were made with).
    pub fn limits(&self) -> Limits {
        Limits {
            vips: self.vip_stats.len(),
            backends: self.backends.len(),
        }
    }

    /// Takes the maps out of a loaded `xlb` object.
    ///
    /// # Errors
    ///
    /// When the object lacks a map or a map has another type or size.
    pub fn take(ebpf: &mut Ebpf) -> Result<Self, DataplaneError> {
        Self::build(|name| {
            ebpf.take_map(name)
                .ok_or(DataplaneError::MissingMap { name })
        })
    }

    /// Opens the maps pinned under `pins`, for readers such as xlbctl and
    /// the tests; writes through them reach the running data plane.
    ///
    /// # Errors
    ///
    /// When a pin is missing or is not the map this build expects.
    pub fn open_pinned(pins: &PinDir) -> Result<Self, DataplaneError> {
        Self::build(|name| {
            let data = MapData::from_pin(pins.map(name))
                .map_err(|source| DataplaneError::Map { name, source })?;
            Map::from_map_data(data).map_err(|source| DataplaneError::Map { name, source })
        })
    }

    fn build(
        mut open: impl FnMut(&'static str) -> Result<Map, DataplaneError>,
    ) -> Result<Self, DataplaneError> {
        Ok(Self {
            vips: typed(VIPS, open(VIPS)?)?,
            vip_addrs: typed(VIP_ADDRS, open(VIP_ADDRS)?)?,
            backends: typed(BACKENDS, open(BACKENDS)?)?,
            maglev: typed(MAGLEV, open(MAGLEV)?)?,
            flows: typed(FLOWS, open(FLOWS)?)?,
            settings: typed(SETTINGS, open(SETTINGS)?)?,
            stats: typed(STATS, open(STATS)?)?,
            flow_inserts: typed(FLOW_INSERTS, open(FLOW_INSERTS)?)?,
            vip_stats: typed(VIP_STATS, open(VIP_STATS)?)?,
            backend_stats: typed(BACKEND_STATS, open(BACKEND_STATS)?)?,
            pool_tables: typed(POOL_TABLES, open(POOL_TABLES)?)?,
            source_rules: typed(SOURCE_RULES, open(SOURCE_RULES)?)?,
            tenant_limits: typed(TENANT_LIMITS, open(TENANT_LIMITS)?)?,
            policy_stats: typed(POLICY_STATS, open(POLICY_STATS)?)?,
        })
    }
}

fn typed<T: TryFrom<Map, Error = MapError>>(
    name: &'static str,
    map: Map,
) -> Result<T, DataplaneError> {
    T::try_from(map).map_err(|source| DataplaneError::Map { name, source })
}

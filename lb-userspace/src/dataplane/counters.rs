//! The read side: counters summed over CPUs, and tracked flows, for xlbctl
//! and metrics.

use aya::maps::MapError;
use lb_common::{Flow, FlowKey, Stat, TrafficCounters};

use super::DataplaneError;
use super::maps::Maps;

/// Packets by outcome, summed over every possible CPU, in `Stat::ALL`
/// order.
///
/// # Errors
///
/// When the `STATS` map cannot be read.
pub fn stats(maps: &Maps) -> Result<Vec<(Stat, u64)>, DataplaneError> {
    Stat::ALL
        .iter()
        .map(|&stat| {
            let per_cpu = maps.stats.get(&stat.index(), 0).map_err(stats_error)?;
            Ok((stat, per_cpu.iter().sum()))
        })
        .collect()
}

/// Flows entered in `FLOWS` since the maps were made, summed over CPUs.
///
/// # Errors
///
/// When the `FLOW_INSERTS` map cannot be read.
pub fn flow_inserts(maps: &Maps) -> Result<u64, DataplaneError> {
    let per_cpu = maps
        .flow_inserts
        .get(&0, 0)
        .map_err(|source| DataplaneError::Map {
            name: lb_common::maps::FLOW_INSERTS,
            source,
        })?;
    Ok(per_cpu.iter().sum())
}

/// Traffic of every VIP id (`limits.vips` entries), summed over CPUs.
/// One read per id: prefer [`vip_traffic_of`] for the ids in use.
///
/// # Errors
///
/// When the `VIP_STATS` map cannot be read.
pub fn vip_traffic(maps: &Maps) -> Result<Vec<TrafficCounters>, DataplaneError> {
    (0..maps.limits().vips)
        .map(|id| sum(maps.vip_stats.get(&id, 0)).map_err(vip_stats_error))
        .collect()
}

/// Traffic of VIP `id`, summed over every possible CPU.
///
/// # Errors
///
/// When the `VIP_STATS` entry cannot be read (`id` out of range).
pub fn vip_traffic_of(maps: &Maps, id: u32) -> Result<TrafficCounters, DataplaneError> {
    sum(maps.vip_stats.get(&id, 0)).map_err(vip_stats_error)
}

/// Traffic of backend `id`, summed over every possible CPU.
///
/// # Errors
///
/// When the `BACKEND_STATS` entry cannot be read (`id` out of range).
pub fn backend_traffic_of(maps: &Maps, id: u32) -> Result<TrafficCounters, DataplaneError> {
    sum(maps.backend_stats.get(&id, 0)).map_err(backend_stats_error)
}

/// What the routing policy did at table `id`, summed over every possible
/// CPU.
///
/// # Errors
///
/// When the `POLICY_STATS` entry cannot be read (`id` out of range).
pub fn policy_of(maps: &Maps, id: u32) -> Result<lb_common::PolicyCounters, DataplaneError> {
    let values = maps
        .policy_stats
        .get(&id, 0)
        .map_err(|source| DataplaneError::Map {
            name: lb_common::maps::POLICY_STATS,
            source,
        })?;
    let mut total = lb_common::PolicyCounters::default();
    for value in values.iter() {
        total.add(value);
    }
    Ok(total)
}

/// Every tracked flow. The XDP program keeps adding flows meanwhile, so this
/// is a snapshot that may miss the newest.
///
/// # Errors
///
/// When the `FLOWS` map cannot be walked.
pub fn flows(maps: &Maps) -> Result<Vec<(FlowKey, Flow)>, DataplaneError> {
    maps.flows
        .iter()
        .filter(|entry| !matches!(entry, Err(MapError::KeyNotFound)))
        .collect::<Result<_, _>>()
        .map_err(|source| DataplaneError::Map {
            name: lb_common::maps::FLOWS,
            source,
        })
}

fn sum(
    per_cpu: Result<aya::maps::PerCpuValues<TrafficCounters>, MapError>,
) -> Result<TrafficCounters, MapError> {
    let mut total = TrafficCounters::default();
    for counters in per_cpu?.iter() {
        total.add(counters);
    }
    Ok(total)
}

fn stats_error(source: MapError) -> DataplaneError {
    DataplaneError::Map {
        name: lb_common::maps::STATS,
        source,
    }
}

fn vip_stats_error(source: MapError) -> DataplaneError {
    DataplaneError::Map {
        name: lb_common::maps::VIP_STATS,
        source,
    }
}

fn backend_stats_error(source: MapError) -> DataplaneError {
    DataplaneError::Map {
        name: lb_common::maps::BACKEND_STATS,
        source,
    }
}

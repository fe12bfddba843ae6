//! The daemon's side of the autoscaler: what it reads from the maps and the
//! load tracker for the pools that are due, and the flows of draining
//! standby backends.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tracing::warn;

use super::Daemon;
use crate::autoscale::PoolReadings;
use crate::dataplane::counters;

impl Daemon {
    /// When the autoscaler next needs [`Daemon::autoscale`]; `None` when no
    /// pool is autoscaled.
    pub fn autoscale_due(&self, now: Instant) -> Option<Instant> {
        self.autoscaler.next_wake(now)
    }

    /// Evaluates the autoscaled pools that are due, advances the standby
    /// backends, and writes the maps when that changed anything.
    ///
    /// # Errors
    ///
    /// When the data plane refuses the write.
    pub fn autoscale(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        let due = self.autoscaler.due(now);
        let readings: BTreeMap<String, PoolReadings> = due
            .iter()
            .map(|pool| (pool.clone(), self.pool_readings(pool)))
            .collect();
        let flows = self.draining_flows();
        if self.autoscaler.tick(now, &readings, &flows) {
            self.reapply()?;
        } else if !due.is_empty() {
            self.publish();
        }
        Ok(())
    }

    /// The new-flow counters of `pool`'s VIPs, summed, and the load of its
    /// backends.
    fn pool_readings(&self, pool: &str) -> PoolReadings {
        let live = self.dataplane.live();
        let mut total = Some(0u64);
        for vip in self.desired.vips.iter().filter(|v| v.pool == pool) {
            let Some(id) = live.vips.get(&vip.key).map(|v| v.value.id) else {
                continue;
            };
            match counters::vip_traffic_of(self.dataplane.maps(), id) {
                Ok(traffic) => total = total.map(|t| t + traffic.new_flows),
                Err(error) => {
                    warn!(pool, vip = vip.name, %error, "cannot read the VIP's counters");
                    total = None;
                }
            }
        }
        let load = (self.load.metrics().snapshot().load.into_iter())
            .filter(|((p, _), _)| p == pool)
            .map(|((_, addr), load)| (addr, load))
            .collect();
        PoolReadings {
            new_flows_total: total,
            load,
        }
    }

    /// Tracked flows seen within their pool's `drain_idle` of each draining
    /// standby backend, from one walk of `FLOWS`; empty when none drains.
    ///
    /// Limitation: the walk runs on the daemon loop, as the flows of a
    /// backend are only counted while one drains; a table of a million
    /// flows takes a few hundred milliseconds. Counting on the blocking
    /// pool through a second handle on the pinned map would lift that.
    fn draining_flows(&self) -> BTreeMap<(String, IpAddr), usize> {
        let draining = self.autoscaler.draining();
        if draining.is_empty() {
            return BTreeMap::new();
        }
        // Backend id -> (pool, address, idle) of the draining backends.
        let live = self.dataplane.live();
        let pool_of_vip: BTreeMap<u32, &str> = (self.desired.vips.iter())
            .filter_map(|vip| Some((live.vips.get(&vip.key)?.value.id, vip.pool.as_str())))
            .collect();
        let mut watched: BTreeMap<u32, (String, IpAddr, Duration)> = BTreeMap::new();
        for (id, backend) in &live.backends {
            let Some(pool) = pool_of_vip.get(&backend.entry.vip_id) else {
                continue;
            };
            let hit = draining
                .iter()
                .find(|(p, a, _)| p == pool && *a == backend.addr);
            if let Some(entry) = hit {
                watched.insert(*id, entry.clone());
            }
        }

        let mut counts: BTreeMap<(String, IpAddr), usize> = draining
            .iter()
            .map(|(pool, addr, _)| ((pool.clone(), *addr), 0))
            .collect();
        let flows = match counters::flows(self.dataplane.maps()) {
            Ok(flows) => flows,
            Err(error) => {
                warn!(%error, "cannot count the flows of draining backends");
                return BTreeMap::new();
            }
        };
        let now_ns = crate::cli::monotonic_ns();
        for (_, flow) in flows {
            let Some((pool, addr, idle)) = watched.get(&flow.backend_id) else {
                continue;
            };
            let idle_ns = u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX);
            if now_ns.saturating_sub(flow.last_seen_ns) < idle_ns {
                *counts.entry((pool.clone(), *addr)).or_default() += 1;
            }
        }
        counts
    }
}

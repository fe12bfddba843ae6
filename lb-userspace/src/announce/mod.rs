//! Telling the routing daemon which VIPs this node serves, without
//! speaking BGP: xlbd keeps a host route for each VIP it can serve in a
//! routing table of its own, and BIRD (`configs/bird-lb.conf`) learns that
//! table and announces its routes to the routers. ECMP on the routers then
//! spreads clients over every node that announces.
//!
//! A VIP is announced while at least one of its backends takes new flows
//! and the data plane is attached; it is withdrawn when every backend is
//! down, when the data plane goes, and when xlbd stops. Withdrawing is
//! what moves traffic off this node, so errors are logged, never fatal.

pub mod route;

use std::collections::BTreeSet;
use std::net::IpAddr;

use tracing::{info, warn};

use crate::config::Announce;
use crate::dataplane::{DesiredState, Health};

/// The VIP routes this node has in its announce table.
#[derive(Debug)]
pub struct Announcer {
    table: u32,
    announced: BTreeSet<IpAddr>,
}

impl Announcer {
    /// Starts announcing into `config.table`. Routes an earlier xlbd left
    /// there (after a crash) are taken as announced, so the first
    /// [`Announcer::sync`] withdraws those this node no longer serves.
    pub fn new(config: &Announce) -> Self {
        let announced = match route::list(config.table) {
            Ok(routes) => routes.into_iter().collect(),
            Err(error) => {
                warn!(%error, table = config.table, "cannot list the announce table");
                BTreeSet::new()
            }
        };
        Self {
            table: config.table,
            announced,
        }
    }

    /// The routing table announced into.
    pub fn table(&self) -> u32 {
        self.table
    }

    /// The VIPs announced now.
    pub fn announced(&self) -> &BTreeSet<IpAddr> {
        &self.announced
    }

    /// Makes the table hold exactly `wanted`: adds what is missing,
    /// withdraws the rest. Logs each change once.
    pub fn sync(&mut self, wanted: &BTreeSet<IpAddr>) {
        let stale: Vec<IpAddr> = self.announced.difference(wanted).copied().collect();
        for vip in stale {
            match route::delete(self.table, vip) {
                Ok(()) => {
                    info!(%vip, table = self.table, "vip withdrawn");
                    self.announced.remove(&vip);
                }
                Err(error) => warn!(%vip, %error, "cannot withdraw the vip route"),
            }
        }
        for &vip in wanted.difference(&self.announced.clone()) {
            match route::add(self.table, vip) {
                Ok(()) => {
                    info!(%vip, table = self.table, "vip announced");
                    self.announced.insert(vip);
                }
                Err(error) => warn!(%vip, %error, "cannot announce the vip route"),
            }
        }
    }

    /// Withdraws every VIP.
    pub fn withdraw_all(&mut self) {
        self.sync(&BTreeSet::new());
    }
}

/// The VIP addresses that can take new flows: those with at least one
/// backend of weight above 0 that is ready and up, as `state` was steered
/// (panic mode counts: it puts backends back into the table). An address
/// with several port VIPs is served if any of them is.
pub fn servable(state: &DesiredState, health: &Health) -> BTreeSet<IpAddr> {
    state
        .vips
        .iter()
        .filter(|vip| {
            vip.backends.iter().any(|backend| {
                backend.weight > 0 && backend.takes_new_flows(health.is_up(&vip.pool, backend.addr))
            })
        })
        .filter_map(|vip| crate::dataplane::live::key_addr_to_ip(&vip.key.addr, vip.key.family))
        .collect()
}

#[cfg(test)]
mod tests;

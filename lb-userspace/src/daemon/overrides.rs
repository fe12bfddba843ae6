//! Operator overrides: backend states and weights set through the control
//! socket (`xlbctl backend drain|ready|maint|weight`), laid over the config.
//!
//! An override names a backend by (pool, address) and replaces its state,
//! its weight, or both, wherever the pool is used. Overrides live in xlbd's
//! memory: they survive reloads (the new config is read, then overlaid), and
//! one whose backend left the config is dropped at that reload.
//!
//! Limitation: a restart of xlbd forgets them, because nothing persists
//! them yet; keeping them in the status file and reading it back at start
//! would fix that.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::config::{BackendState, Share};
use crate::dataplane::desired::{AdminState, DesiredBackend, DesiredState};

/// What the operator set on one backend.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// State replacing the config's, if set.
    pub state: Option<BackendState>,
    /// Weight replacing the config's, if set.
    pub weight: Option<u32>,
}

/// Every override: backends by (pool, address), canary shares by VIP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    by_backend: BTreeMap<(String, IpAddr), Override>,
    // Set by `xlbctl vip split` or by an automatic rollback (0).
    canary_shares: BTreeMap<String, Share>,
}

impl Overrides {
    /// The override of `addr` in `pool`, if any.
    pub fn get(&self, pool: &str, addr: IpAddr) -> Option<&Override> {
        self.by_backend.get(&(pool.to_owned(), addr))
    }

    /// Merges `change` into the override of `addr` in `pool`: fields left
    /// `None` in `change` keep their earlier value.
    pub fn set(&mut self, pool: &str, addr: IpAddr, change: &Override) {
        let entry = self.by_backend.entry((pool.to_owned(), addr)).or_default();
        if change.state.is_some() {
            entry.state = change.state;
        }
        if change.weight.is_some() {
            entry.weight = change.weight;
        }
    }

    /// Removes the override of `addr` in `pool`; returns whether there was one.
    pub fn clear(&mut self, pool: &str, addr: IpAddr) -> bool {
        self.by_backend.remove(&(pool.to_owned(), addr)).is_some()
    }

    /// The canary share set on VIP `vip`, if any.
    pub fn canary_share(&self, vip: &str) -> Option<Share> {
        self.canary_shares.get(vip).copied()
    }

    /// Sets (`Some`) or clears (`None`) the canary share of VIP `vip`.
    pub fn set_canary_share(&mut self, vip: &str, share: Option<Share>) {
        match share {
            Some(share) => self.canary_shares.insert(vip.to_owned(), share),
            None => self.canary_shares.remove(vip),
        };
    }

    /// Drops overrides of backends `desired` no longer has; returns them.
    /// Canary shares of VIPs that no longer have a canary go too.
    pub fn prune(&mut self, desired: &DesiredState) -> Vec<(String, IpAddr)> {
        let present = |(pool, addr): &(String, IpAddr)| {
            desired
                .vips
                .iter()
                .any(|vip| vip.pool == *pool && vip.backends.iter().any(|b| b.addr == *addr))
        };
        let gone: Vec<(String, IpAddr)> = self
            .by_backend
            .keys()
            .filter(|key| !present(key))
            .cloned()
            .collect();
        for key in &gone {
            self.by_backend.remove(key);
        }
        let has_canary = |vip: &String| desired.policy.get(vip).is_some_and(|p| p.canary.is_some());
        self.canary_shares.retain(|vip, _| has_canary(vip));
        gone
    }

    /// `backend` of `pool` with its override applied.
    pub fn overlay_backend(&self, pool: &str, backend: &DesiredBackend) -> DesiredBackend {
        let mut backend = *backend;
        if let Some(over) = self.get(pool, backend.addr) {
            if let Some(state) = over.state {
                backend.state = admin_state(state);
            }
            if let Some(weight) = over.weight {
                backend.weight = weight;
            }
        }
        backend
    }

    /// `desired` with every override applied: what the maps must hold.
    pub fn overlay(&self, desired: &DesiredState) -> DesiredState {
        let mut out = desired.clone();
        for vip in &mut out.vips {
            for backend in &mut vip.backends {
                *backend = self.overlay_backend(&vip.pool, backend);
            }
        }
        for (vip, policy) in &mut out.policy {
            if let (Some(canary), Some(share)) = (&mut policy.canary, self.canary_share(vip)) {
                canary.share = share;
            }
        }
        out
    }
}

/// The data plane's state for a config state.
pub fn admin_state(state: BackendState) -> AdminState {
    match state {
        BackendState::Ready => AdminState::Ready,
        BackendState::Drain => AdminState::Drain,
        BackendState::Maint => AdminState::Maint,
    }
}

#[cfg(test)]
mod tests {
    use lb_common::VipKey;

    use super::*;
    use crate::dataplane::desired::DesiredVip;

    fn desired(addrs: &[[u8; 4]]) -> DesiredState {
        let backends = addrs
            .iter()
            .map(|&a| DesiredBackend {
                addr: IpAddr::from(a),
                weight: 1,
                state: AdminState::Ready,
            })
            .collect();
        let vip = DesiredVip {
            name: "web".to_owned(),
            key: VipKey::default(),
            flags: 0,
            table_size: 7,
            pool: "web".to_owned(),
            backends,
            owner: None,
            ports: Vec::new(),
        };
        DesiredState {
            vips: vec![vip],
            ..DesiredState::default()
        }
    }

    #[test]
    fn an_override_replaces_only_the_fields_it_sets() {
        let mut overrides = Overrides::default();
        let addr = IpAddr::from([10, 0, 0, 1]);
        let drain = Override {
            state: Some(BackendState::Drain),
            weight: None,
        };
        overrides.set("web", addr, &drain);
        let weight = Override {
            state: None,
            weight: Some(5),
        };
        overrides.set("web", addr, &weight);
        let out = overrides.overlay(&desired(&[[10, 0, 0, 1], [10, 0, 0, 2]]));
        let backends = &out.vips[0].backends;
        assert_eq!(
            (backends[0].state, backends[0].weight),
            (AdminState::Drain, 5)
        );
        assert_eq!(
            (backends[1].state, backends[1].weight),
            (AdminState::Ready, 1)
        );
    }

    #[test]
    fn overrides_of_backends_gone_from_the_config_are_dropped() {
        let mut overrides = Overrides::default();
        let change = Override {
            state: Some(BackendState::Maint),
            weight: None,
        };
        overrides.set("web", IpAddr::from([10, 0, 0, 1]), &change);
        overrides.set("web", IpAddr::from([10, 0, 0, 9]), &change);
        let gone = overrides.prune(&desired(&[[10, 0, 0, 1]]));
        assert_eq!(gone, [("web".to_owned(), IpAddr::from([10, 0, 0, 9]))]);
        assert!(overrides.get("web", IpAddr::from([10, 0, 0, 1])).is_some());
    }
}

//! Stable VIP and backend ids.
//!
//! Ids index `VIP_STATS`, `MAGLEV`, `BACKENDS` and the `Flow` values the
//! kernel stores, so they must not move while a flow may still refer to
//! them: across reloads and across restarts of xlbd. A VIP keeps its id as
//! long as its (address, port, protocol) stays; a backend as long as its
//! (VIP id, address) pair stays. After a restart the assignment is rebuilt
//! from the pinned `VIPS` and `BACKENDS` maps.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use lb_common::VipKey;

use super::{DataplaneError, Limits};

/// Which ids are taken, and by what.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    vips: HashMap<VipKey, u32>,
    backends: BTreeMap<(u32, IpAddr), u32>,
    // The ids in `backends`, to find a free one without a scan.
    backend_ids: BTreeSet<u32>,
    // Backend ids are handed out round-robin, so a freed id is reused as
    // late as possible: flows still naming it find it empty and move on.
    next_backend: u32,
    limits: Limits,
}

impl Ids {
    /// No ids taken yet, and room for `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Records an id found in the maps.
    pub fn adopt_vip(&mut self, key: VipKey, id: u32) {
        self.vips.insert(key, id);
    }

    /// Records a backend id found in the maps.
    pub fn adopt_backend(&mut self, vip_id: u32, addr: IpAddr, id: u32) {
        self.backends.insert((vip_id, addr), id);
        self.backend_ids.insert(id);
        self.next_backend = self.next_backend.max(id + 1) % self.limits.backends;
    }

    /// The id of the VIP or table `key`, if it has one.
    pub fn get_vip(&self, key: &VipKey) -> Option<u32> {
        self.vips.get(key).copied()
    }

    /// Records that table `key` keeps `id` (read back from a port key),
    /// unless it has an id already or `id` is taken.
    pub fn adopt_vip_if_free(&mut self, key: VipKey, id: u32) {
        if !self.vips.contains_key(&key) && !self.vips.values().any(|&taken| taken == id) {
            self.vips.insert(key, id);
        }
    }

    /// The id of the VIP `key`, given a new one if it has none.
    ///
    /// # Errors
    ///
    /// When all `limits.vips` ids are taken.
    pub fn vip(&mut self, key: VipKey) -> Result<u32, DataplaneError> {
        if let Some(&id) = self.vips.get(&key) {
            return Ok(id);
        }
        let max = self.limits.vips;
        let mut taken = vec![false; max as usize];
        for &id in self.vips.values() {
            if let Some(slot) = taken.get_mut(id as usize) {
                *slot = true;
            }
        }
        let id = (0..max)
            .find(|&id| !taken[id as usize])
            .ok_or(DataplaneError::TooManyVips { max })?;
        self.vips.insert(key, id);
        Ok(id)
    }

    /// The id of backend `addr` of VIP `vip_id`, given a new one if needed.
    ///
    /// # Errors
    ///
    /// When all `limits.backends` ids are taken.
    pub fn backend(&mut self, vip_id: u32, addr: IpAddr) -> Result<u32, DataplaneError> {
        if let Some(&id) = self.backends.get(&(vip_id, addr)) {
            return Ok(id);
        }
        let max = self.limits.backends;
        let next = self.next_backend % max;
        let id = (0..max)
            .map(|step| (next + step) % max)
            .find(|id| !self.backend_ids.contains(id))
            .ok_or(DataplaneError::TooManyBackends { max })?;
        self.next_backend = (id + 1) % max;
        self.backends.insert((vip_id, addr), id);
        self.backend_ids.insert(id);
        Ok(id)
    }

    /// Frees the VIP `key`'s id.
    pub fn free_vip(&mut self, key: &VipKey) {
        self.vips.remove(key);
    }

    /// Frees a backend id; call only once its `BACKENDS` entry is cleared.
    pub fn free_backend(&mut self, vip_id: u32, addr: IpAddr) {
        if let Some(id) = self.backends.remove(&(vip_id, addr)) {
            self.backend_ids.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(last: u8) -> VipKey {
        VipKey {
            addr: lb_common::v4_key_addr([10, 0, 0, last]),
            ..VipKey::default()
        }
    }

    #[test]
    fn a_vip_keeps_its_id_and_new_vips_take_the_lowest_free_one() {
        let mut ids = Ids::default();
        ids.adopt_vip(key(1), 0);
        ids.adopt_vip(key(3), 2);
        assert_eq!(ids.vip(key(1)).unwrap(), 0);
        assert_eq!(ids.vip(key(2)).unwrap(), 1);
        assert_eq!(ids.vip(key(4)).unwrap(), 3);
    }

    #[test]
    fn a_freed_backend_id_is_not_reused_at_once() {
        let mut ids = Ids::default();
        let a: IpAddr = "10.1.0.1".parse().unwrap();
        let b: IpAddr = "10.1.0.2".parse().unwrap();
        let first = ids.backend(0, a).unwrap();
        ids.free_backend(0, a);
        let second = ids.backend(0, b).unwrap();
        assert_ne!(first, second);
        assert_eq!(ids.backend(0, b).unwrap(), second);
    }

    #[test]
    fn backend_ids_continue_after_the_highest_adopted_one() {
        let mut ids = Ids::default();
        ids.adopt_backend(0, "10.1.0.1".parse().unwrap(), 7);
        assert_eq!(ids.backend(0, "10.1.0.2".parse().unwrap()).unwrap(), 8);
    }

    #[test]
    fn ids_run_out_at_the_limits_the_maps_have() {
        let mut ids = Ids::new(Limits {
            vips: 2,
            backends: 2,
        });
        ids.vip(key(1)).unwrap();
        ids.vip(key(2)).unwrap();
        assert!(matches!(
            ids.vip(key(3)),
            Err(DataplaneError::TooManyVips { max: 2 })
        ));

        let a: IpAddr = "10.1.0.1".parse().unwrap();
        let b: IpAddr = "10.1.0.2".parse().unwrap();
        let c: IpAddr = "10.1.0.3".parse().unwrap();
        ids.backend(0, a).unwrap();
        ids.backend(0, b).unwrap();
        assert!(matches!(
            ids.backend(0, c),
            Err(DataplaneError::TooManyBackends { max: 2 })
        ));
        ids.free_backend(0, a);
        assert!(ids.backend(0, c).is_ok(), "a freed id is taken again");
    }
}

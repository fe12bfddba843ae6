//! Stable VIP and backend ids.
//!
//! Ids index `VIP_STATS`, `MAGLEV`, `BACKENDS` and the `Flow` values the
//! kernel stores, so they must not move while a flow may still refer to
//! them: across reloads and across restarts of xlbd. A VIP keeps its id as
//! long as its (address, port, protocol) stays; a backend as long as its
//! (VIP id, address) pair stays. After a restart the assignment is rebuilt
//! from the pinned `VIPS` and `BACKENDS` maps.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use lb_common::{MAX_BACKENDS, MAX_VIPS, VipKey};

use super::DataplaneError;

/// Which ids are taken, and by what.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    vips: HashMap<VipKey, u32>,
    backends: BTreeMap<(u32, IpAddr), u32>,
    // Backend ids are handed out round-robin, so a freed id is reused as
    // late as possible: flows still naming it find it empty and move on.
    next_backend: u32,
}

impl Ids {
    /// Records an id found in the maps.
    pub fn adopt_vip(&mut self, key: VipKey, id: u32) {
        self.vips.insert(key, id);
    }

    /// Records a backend id found in the maps.
    pub fn adopt_backend(&mut self, vip_id: u32, addr: IpAddr, id: u32) {
        self.backends.insert((vip_id, addr), id);
        self.next_backend = self.next_backend.max(id + 1) % MAX_BACKENDS;
    }

    /// The id of the VIP `key`, given a new one if it has none.
    ///
    /// # Errors
    ///
    /// When all `MAX_VIPS` ids are taken.
    pub fn vip(&mut self, key: VipKey) -> Result<u32, DataplaneError> {
        if let Some(&id) = self.vips.get(&key) {
            return Ok(id);
        }
        let id = (0..MAX_VIPS)
            .find(|id| !self.vips.values().any(|taken| taken == id))
            .ok_or(DataplaneError::TooManyVips { max: MAX_VIPS })?;
        self.vips.insert(key, id);
        Ok(id)
    }

    /// The id of backend `addr` of VIP `vip_id`, given a new one if needed.
    ///
    /// # Errors
    ///
    /// When all `MAX_BACKENDS` ids are taken.
    pub fn backend(&mut self, vip_id: u32, addr: IpAddr) -> Result<u32, DataplaneError> {
        if let Some(&id) = self.backends.get(&(vip_id, addr)) {
            return Ok(id);
        }
        let mut taken = vec![false; MAX_BACKENDS as usize];
        for &id in self.backends.values() {
            taken[id as usize] = true;
        }
        let id = (0..MAX_BACKENDS)
            .map(|step| (self.next_backend + step) % MAX_BACKENDS)
            .find(|&id| !taken[id as usize])
            .ok_or(DataplaneError::TooManyBackends { max: MAX_BACKENDS })?;
        self.next_backend = (id + 1) % MAX_BACKENDS;
        self.backends.insert((vip_id, addr), id);
        Ok(id)
    }

    /// Frees the VIP `key`'s id.
    pub fn free_vip(&mut self, key: &VipKey) {
        self.vips.remove(key);
    }

    /// Frees a backend id; call only once its `BACKENDS` entry is cleared.
    pub fn free_backend(&mut self, vip_id: u32, addr: IpAddr) {
        self.backends.remove(&(vip_id, addr));
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
}

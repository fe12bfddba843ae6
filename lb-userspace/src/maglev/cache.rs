//! Reusing Maglev tables between plans.
//!
//! xlbd plans every table again on each reload and each health or load
//! change, and at 1000 VIPs building the tables is most of a reload's time
//! (about 0.4 ms per table of 10007 slots and 100 backends). A table
//! depends only on its size and its backends (addresses and weights, in
//! order), so a table built before for the same inputs is reused. Entries
//! not asked for in the last two rounds (plans) are dropped, so the cache
//! holds about one table per configured table. Slots are kept as `u16`
//! indices (half the memory of the plan's `u32` ids); a table of more than
//! 65 534 backends is built every time.

use std::collections::HashMap;

use lb_common::NO_BACKEND;

use super::{MaglevBackend, MaglevError, build_table};

/// `u16` slot value standing for [`NO_BACKEND`].
const NO_SLOT: u16 = u16::MAX;

/// Built tables by (size, backends), with the round each was last used in.
#[derive(Default)]
pub struct TableCache {
    entries: HashMap<(u32, Vec<MaglevBackend>), Entry>,
    round: u64,
}

struct Entry {
    slots: Box<[u16]>,
    round: u64,
}

impl TableCache {
    /// The table [`build_table`] gives for `backends` and `size`, built or
    /// reused.
    ///
    /// # Errors
    ///
    /// As [`build_table`].
    pub fn table(
        &mut self,
        backends: &[MaglevBackend],
        size: u32,
    ) -> Result<Vec<u32>, MaglevError> {
        if backends.len() >= usize::from(NO_SLOT) {
            return build_table(backends, size);
        }
        let key = (size, backends.to_vec());
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.round = self.round;
            return Ok(widen(&entry.slots));
        }
        let table = build_table(backends, size)?;
        let slots = table.iter().map(|&slot| narrow(slot)).collect();
        let round = self.round;
        self.entries.insert(key, Entry { slots, round });
        Ok(table)
    }

    /// Ends a round (a plan): drops the tables the last two rounds did not
    /// ask for.
    pub fn end_round(&mut self) {
        let oldest_kept = self.round.saturating_sub(1);
        self.entries.retain(|_, entry| entry.round >= oldest_kept);
        self.round += 1;
    }

    /// Tables held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no table is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn narrow(slot: u32) -> u16 {
    // Indices are below the backend count, checked to fit before building.
    u16::try_from(slot).unwrap_or(NO_SLOT)
}

fn widen(slots: &[u16]) -> Vec<u32> {
    let wide = |slot: u16| match slot {
        NO_SLOT => NO_BACKEND,
        index => u32::from(index),
    };
    slots.iter().map(|&slot| wide(slot)).collect()
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::{MaglevBackend, TableCache, build_table};

    fn backends(weights: &[u32]) -> Vec<MaglevBackend> {
        let addr = |i: usize| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1));
        (0..weights.len())
            .map(|i| MaglevBackend {
                addr: addr(i),
                weight: weights[i],
            })
            .collect()
    }

    #[test]
    fn a_reused_table_is_the_table_a_fresh_build_gives() {
        let mut cache = TableCache::default();
        for weights in [[1, 1, 1], [1, 0, 2], [0, 0, 0], [1, 1, 1]] {
            let set = backends(&weights);
            let fresh = build_table(&set, 1021).expect("build");
            assert_eq!(cache.table(&set, 1021).expect("first"), fresh);
            assert_eq!(cache.table(&set, 1021).expect("reused"), fresh);
        }
        assert_eq!(cache.len(), 3, "one entry per distinct input");
    }

    #[test]
    fn tables_unused_for_two_rounds_are_dropped() {
        let mut cache = TableCache::default();
        cache.table(&backends(&[1, 1]), 1021).expect("a");
        cache.end_round();
        cache.table(&backends(&[1, 2]), 1021).expect("b");
        cache.end_round();
        assert_eq!(cache.len(), 2, "a was asked for in the round before");
        cache.table(&backends(&[1, 2]), 1021).expect("b again");
        cache.end_round();
        assert_eq!(cache.len(), 1, "a was not asked for in the last two rounds");
    }
}

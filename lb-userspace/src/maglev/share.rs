//! How a built table divides its slots, for `maglev show` and the tests.

use super::MaglevBackend;

/// One backend's slots in a table next to what its weight entitles it to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlotShare {
    /// Index into the backends the table was built from.
    pub index: usize,
    /// Slots the backend holds.
    pub slots: u32,
    /// Slots its weight entitles it to: `size * weight / total_weight`.
    pub ideal: f64,
}

impl SlotShare {
    /// How far `slots` is from `ideal`, in percent of `ideal`; 0 for a
    /// backend of weight 0 that holds no slot.
    pub fn deviation_percent(&self) -> f64 {
        if self.ideal == 0.0 {
            return if self.slots == 0 { 0.0 } else { f64::INFINITY };
        }
        (f64::from(self.slots) - self.ideal) / self.ideal * 100.0
    }
}

/// Each backend's slot count in `table` and its ideal share, in the order
/// of `backends`. Slots holding an index past `backends` are not counted.
pub fn slot_shares(table: &[u32], backends: &[MaglevBackend]) -> Vec<SlotShare> {
    let mut slots = vec![0u32; backends.len()];
    for &entry in table {
        if let Some(count) = slots.get_mut(entry as usize) {
            *count += 1;
        }
    }

    let total_weight: u64 = backends.iter().map(|b| u64::from(b.weight)).sum();
    let size = table.len() as f64;
    backends
        .iter()
        .zip(slots)
        .enumerate()
        .map(|(index, (backend, slots))| {
            let ideal = if total_weight == 0 {
                0.0
            } else {
                size * f64::from(backend.weight) / total_weight as f64
            };
            SlotShare {
                index,
                slots,
                ideal,
            }
        })
        .collect()
}

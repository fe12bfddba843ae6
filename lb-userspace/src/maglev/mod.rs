//! Weighted Maglev lookup tables.
//!
//! A table maps each of its `size` slots (a prime) to one backend; the kernel
//! picks slot `flow_hash % size`. Each backend walks its own permutation of
//! the slots, `(offset + j * skip) % size`, and the backends take turns
//! claiming the next free slot of their permutation until every slot is
//! taken (Eisenbud et al., "Maglev", NSDI 2016, section 3.4).
//!
//! Two properties the rest of xlb relies on:
//! - **Order independence.** Offsets and skips come from a fixed hash of
//!   each backend's address, and backends take turns in address order, so
//!   the same set of (address, weight) pairs yields byte-identical tables on
//!   every node and after every restart, however the config lists them.
//! - **Weights.** Turns are paid for with credit: every round each backend
//!   earns its weight, and claims one slot for each `max_weight` of credit it
//!   holds. The heaviest backend claims a slot every round, a backend of half
//!   its weight every other round, so slot counts follow weights to within
//!   one slot per backend. Backends of weight 0 claim nothing.

mod cache;
mod share;
#[cfg(test)]
mod tests;

pub use cache::TableCache;

use std::net::IpAddr;

use lb_common::{FAMILY_V4, FAMILY_V6, FlowHasher, NO_BACKEND};

pub use share::{SlotShare, slot_shares};

/// Tables smaller than this many slots per backend are allowed but give
/// visibly uneven shares; the config warns about them.
pub const MIN_SLOTS_PER_BACKEND: u32 = 100;

// Words mixed in ahead of the address so the offset and the skip come from
// two unrelated hashes of the same bytes.
const OFFSET_SEED: u32 = 0x6f66_7374; // "ofst"
const SKIP_SEED: u32 = 0x736b_6970; // "skip"

/// One backend as the table generator sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MaglevBackend {
    /// The backend's address: its identity for hashing and ordering.
    pub addr: IpAddr,
    /// Relative share of slots; 0 takes no slot.
    pub weight: u32,
}

/// Why a table cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaglevError {
    /// The table size is not a prime, so some permutations would repeat.
    #[error("maglev table size {0} is not prime")]
    SizeNotPrime(u32),
    /// Two backends share an address, so their order would be ambiguous.
    #[error("backend {0} is listed twice")]
    DuplicateBackend(IpAddr),
    /// More weighted backends than slots: some could never be picked.
    #[error("maglev table of {size} slots cannot hold {backends} backends")]
    TooManyBackends {
        /// Slots in the table.
        size: u32,
        /// Backends with a weight above 0.
        backends: usize,
    },
}

/// Whether `n` is prime.
pub fn is_prime(n: u32) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) || n.is_multiple_of(3) {
        return false;
    }
    let n = u64::from(n);
    let mut d = 5u64;
    while d * d <= n {
        if n % d == 0 || n % (d + 2) == 0 {
            return false;
        }
        d += 6;
    }
    true
}

/// Whether a table of `size` slots is small enough for `backends` weighted
/// backends that their shares will be visibly uneven.
pub fn is_undersized(size: u32, backends: usize) -> bool {
    u64::from(size) < u64::from(MIN_SLOTS_PER_BACKEND) * backends as u64
}

/// Builds the Maglev table of `size` slots for `backends`.
///
/// Returns one entry per slot: an index into `backends`, or
/// [`NO_BACKEND`] in every slot when no backend has a weight above 0.
///
/// # Errors
///
/// [`MaglevError`] when `size` is not prime, an address is listed twice, or
/// there are more weighted backends than slots.
pub fn build_table(backends: &[MaglevBackend], size: u32) -> Result<Vec<u32>, MaglevError> {
    if !is_prime(size) {
        return Err(MaglevError::SizeNotPrime(size));
    }
    let order = address_order(backends)?;

    let weighted: Vec<usize> = order
        .into_iter()
        .filter(|&i| backends[i].weight > 0)
        .collect();
    if weighted.is_empty() {
        return Ok(vec![NO_BACKEND; size as usize]);
    }
    if weighted.len() > size as usize {
        return Err(MaglevError::TooManyBackends {
            size,
            backends: weighted.len(),
        });
    }

    Ok(populate(backends, &weighted, size))
}

/// Indices of `backends` sorted by address.
fn address_order(backends: &[MaglevBackend]) -> Result<Vec<usize>, MaglevError> {
    let mut order: Vec<usize> = (0..backends.len()).collect();
    order.sort_by_key(|&i| backends[i].addr);
    for pair in order.windows(2) {
        let addr = backends[pair[0]].addr;
        if addr == backends[pair[1]].addr {
            return Err(MaglevError::DuplicateBackend(addr));
        }
    }
    Ok(order)
}

/// Where one backend stands in its walk of the slots.
struct Walker {
    /// Index into the caller's slice, written into claimed slots.
    index: u32,
    weight: u64,
    /// Slot the walk looks at next.
    next: u32,
    skip: u32,
    /// Weight earned and not yet spent on slots.
    credit: u64,
}

/// Fills a table of `size` slots; `weighted` lists the backends that take
/// part, in address order.
fn populate(backends: &[MaglevBackend], weighted: &[usize], size: u32) -> Vec<u32> {
    let mut walkers: Vec<Walker> = weighted
        .iter()
        .map(|&i| {
            let addr = backends[i].addr;
            Walker {
                index: i as u32,
                weight: u64::from(backends[i].weight),
                next: address_hash(addr, OFFSET_SEED) % size,
                skip: address_hash(addr, SKIP_SEED) % (size - 1) + 1,
                credit: 0,
            }
        })
        .collect();
    let max_weight = walkers.iter().map(|w| w.weight).max().unwrap_or(1);

    let mut table = vec![NO_BACKEND; size as usize];
    let mut filled = 0u32;
    while filled < size {
        for walker in &mut walkers {
            walker.credit += walker.weight;
            while walker.credit >= max_weight && filled < size {
                walker.credit -= max_weight;
                claim_next_free(&mut table, walker, size);
                filled += 1;
            }
        }
    }
    table
}

/// Moves `walker` along its permutation to the first free slot and takes it.
fn claim_next_free(table: &mut [u32], walker: &mut Walker, size: u32) {
    // A free slot exists (the caller counts them), and the permutation
    // visits every slot because `size` is prime and 0 < skip < size.
    while table[walker.next as usize] != NO_BACKEND {
        walker.next = step(walker.next, walker.skip, size);
    }
    table[walker.next as usize] = walker.index;
    walker.next = step(walker.next, walker.skip, size);
}

fn step(slot: u32, skip: u32, size: u32) -> u32 {
    ((u64::from(slot) + u64::from(skip)) % u64::from(size)) as u32
}

/// A fixed hash of `addr` (same bytes and family layout as the kernel's
/// keys), stable across builds, machines and Rust releases.
fn address_hash(addr: IpAddr, seed: u32) -> u32 {
    let (bytes, family) = match addr {
        IpAddr::V4(v4) => (lb_common::v4_key_addr(v4.octets()), FAMILY_V4),
        IpAddr::V6(v6) => (v6.octets(), FAMILY_V6),
    };
    let mut hasher = FlowHasher::new();
    hasher.write_u32(seed);
    hasher.write_addr(&bytes, family);
    hasher.finish()
}

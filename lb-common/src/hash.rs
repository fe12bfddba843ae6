//! The flow hash, one definition for the kernel and user space.
//!
//! MurmurHash3's 32-bit mixing over 32-bit words, with a fixed seed: cheap
//! in BPF (no loops, no tables), and identical on every node, so any LB node
//! maps a flow to the same Maglev slot.

use crate::{FAMILY_V4, FlowKey};

const SEED: u32 = 0x786c_6221; // "xlb!"
const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// Which fields of a [`FlowKey`] the hash covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashInput {
    /// Addresses, ports and protocol: the usual per-connection spread.
    FiveTuple,
    /// Both addresses only: IP fragments, which carry no ports after the
    /// first, so every fragment of a datagram lands on one backend.
    Addresses,
    /// The client address only: source affinity.
    Source,
}

/// Incremental MurmurHash3 (32-bit) over whole words.
#[derive(Clone, Copy, Debug)]
pub struct FlowHasher {
    h: u32,
    len: u32,
}

impl Default for FlowHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl FlowHasher {
    /// A hasher with xlb's fixed seed.
    pub const fn new() -> Self {
        Self { h: SEED, len: 0 }
    }

    /// Mixes in one word.
    #[inline(always)]
    pub fn write_u32(&mut self, word: u32) {
        let k = word.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        self.h = (self.h ^ k)
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
        self.len += 4;
    }

    /// Mixes in an address: 1 word for IPv4, 4 for IPv6.
    #[inline(always)]
    pub fn write_addr(&mut self, addr: &[u8; 16], family: u8) {
        self.write_u32(u32::from_le_bytes([addr[0], addr[1], addr[2], addr[3]]));
        if family != FAMILY_V4 {
            self.write_u32(u32::from_le_bytes([addr[4], addr[5], addr[6], addr[7]]));
            self.write_u32(u32::from_le_bytes([addr[8], addr[9], addr[10], addr[11]]));
            self.write_u32(u32::from_le_bytes([addr[12], addr[13], addr[14], addr[15]]));
        }
    }

    /// The final avalanche.
    #[inline(always)]
    pub fn finish(self) -> u32 {
        let mut h = self.h ^ self.len;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

/// Hash of `key` over the fields `input` names.
#[inline(always)]
pub fn flow_hash(key: &FlowKey, input: HashInput) -> u32 {
    let mut hasher = FlowHasher::new();
    hasher.write_addr(&key.src, key.family);
    match input {
        HashInput::Source => {}
        HashInput::Addresses => hasher.write_addr(&key.dst, key.family),
        HashInput::FiveTuple => {
            hasher.write_addr(&key.dst, key.family);
            let ports = u32::from(key.sport_be) << 16 | u32::from(key.dport_be);
            hasher.write_u32(ports);
            hasher.write_u32(u32::from(key.proto));
        }
    }
    hasher.finish()
}

/// Salt of [`split_bits`], so its bits owe nothing to the slot choice.
const SPLIT_SALT: u32 = 0x5eed_ca11;

/// Where a flow of hash `hash` falls in a traffic split: a number below
/// 65 536 (`policy::CANARY_SHARE_ALL`), so a share of `s` per 65 536 takes
/// the flows with `split_bits(hash) < s`.
///
/// The hash is salted and mixed again (MurmurHash3's finaliser) and the
/// high 16 bits kept, so the split does not follow the Maglev slot
/// (`hash % table_size`): a canary's flows are spread over every slot of
/// the table they leave, and of the one they join.
#[inline(always)]
pub fn split_bits(hash: u32) -> u32 {
    let mut h = hash ^ SPLIT_SALT;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h >> 16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(last: u8, sport: u16) -> FlowKey {
        FlowKey {
            src: crate::v4_key_addr([10, 0, 0, last]),
            dst: crate::v4_key_addr([192, 0, 2, 1]),
            sport_be: sport.to_be(),
            dport_be: 80u16.to_be(),
            proto: crate::PROTO_TCP,
            family: FAMILY_V4,
            _pad: [0; 2],
        }
    }

    #[test]
    fn same_key_hashes_the_same() {
        assert_eq!(
            flow_hash(&key(1, 1000), HashInput::FiveTuple),
            flow_hash(&key(1, 1000), HashInput::FiveTuple)
        );
    }

    #[test]
    fn ports_change_the_five_tuple_hash_only() {
        let (a, b) = (key(1, 1000), key(1, 1001));
        assert_ne!(
            flow_hash(&a, HashInput::FiveTuple),
            flow_hash(&b, HashInput::FiveTuple)
        );
        assert_eq!(
            flow_hash(&a, HashInput::Addresses),
            flow_hash(&b, HashInput::Addresses)
        );
        assert_eq!(
            flow_hash(&a, HashInput::Source),
            flow_hash(&b, HashInput::Source)
        );
    }

    #[test]
    fn hash_is_pinned_so_nodes_and_releases_agree() {
        // Changing the hash moves every flow on upgrade: do it on purpose only.
        assert_eq!(flow_hash(&key(1, 1000), HashInput::FiveTuple), PINNED);
    }
    const PINNED: u32 = 464_469_359;

    #[test]
    fn split_bits_spread_evenly_within_one_slot() {
        // The flows of one Maglev slot must still split by their share.
        let (mut flows, mut low) = (0u32, 0u32);
        for i in 0..200_000u32 {
            let h = flow_hash(&key((i >> 16) as u8, i as u16), HashInput::FiveTuple);
            if h % 251 == 7 {
                flows += 1;
                low += u32::from(split_bits(h) < 1 << 15);
            }
        }
        let share = f64::from(low) / f64::from(flows);
        assert!(
            (share - 0.5).abs() < 0.05,
            "half of one slot's flows: {share}"
        );
    }
}

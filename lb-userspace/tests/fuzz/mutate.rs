//! Mutations of frames: cuts, stray bytes, bad length and header-length
//! fields, odd VLAN stacks, fragment bits, foreign protocols. Each is
//! small and blind to validity; a case applies a few in a row.

use rand::{Rng, rngs::SmallRng};

use super::wire::{ETH_IPV4, ETH_IPV6, link_layer, ones_sum};

/// Protocol numbers worth trying in IPv4 `protocol` / IPv6 `next header`.
const PROTOCOLS: [u8; 14] = [0, 1, 4, 6, 17, 41, 43, 44, 50, 51, 58, 59, 60, 255];
/// EtherTypes and tag types worth trying.
const ETHER_TYPES: [u16; 7] = [0x0800, 0x86dd, 0x8100, 0x88a8, 0x9100, 0x0806, 0x88cc];

/// Applies one random mutation to `frame`; returns its name.
pub fn mutate(rng: &mut SmallRng, frame: &mut Vec<u8>) -> &'static str {
    let l3 = link_layer(frame);
    match rng.random_range(0..14) {
        0 => {
            let len = rng.random_range(0..=frame.len());
            frame.truncate(len);
            "truncate"
        }
        1 => set_random_byte(rng, frame, 100),
        2 => {
            if !frame.is_empty() {
                let i = rng.random_range(0..frame.len());
                frame[i] ^= 1 << rng.random_range(0..8);
            }
            "flip a bit"
        }
        3 => ipv4_field(rng, frame, l3, 2, "ipv4 total length"),
        4 => {
            if let Some((l2, ETH_IPV4)) = l3
                && let Some(b) = frame.get_mut(l2)
            {
                *b = (*b & 0xf0) | rng.random_range(0..16);
            }
            "ipv4 header length"
        }
        5 => ipv6_payload_len(rng, frame, l3),
        6 => {
            for _ in 0..rng.random_range(1..=4) {
                let tpid = ETHER_TYPES[rng.random_range(2..5)];
                let tag = [tpid.to_be_bytes(), [0, rng.random_range(1..16)]].concat();
                let at = 12.min(frame.len());
                frame.splice(at..at, tag);
            }
            "vlan tags pushed"
        }
        7 => {
            let at = l3.map_or(12, |(l2, _)| l2 - 2);
            let et = if rng.random_bool(0.8) {
                ETHER_TYPES[rng.random_range(0..ETHER_TYPES.len())]
            } else {
                rng.random()
            };
            put(frame, at, &et.to_be_bytes());
            "ethertype"
        }
        8 => {
            let extra = rng.random_range(1..64);
            frame.extend((0..extra).map(|_| rng.random::<u8>()));
            "trailing bytes"
        }
        9 => {
            let bits: u16 = match rng.random_range(0..4) {
                0 => 0x2000,
                1 => rng.random_range(1..0x2000),
                2 => 0x4000,
                _ => rng.random(),
            };
            if let Some((l2, ETH_IPV4)) = l3 {
                put(frame, l2 + 6, &bits.to_be_bytes());
            }
            "ipv4 fragment bits"
        }
        10 => {
            if let Some((l2, ETH_IPV4)) = l3 {
                refresh_ipv4_checksum(frame, l2);
            }
            "ipv4 checksum refreshed"
        }
        11 => {
            if frame.len() > 2 {
                let start = rng.random_range(0..frame.len() - 1);
                let end = rng.random_range(start + 1..=frame.len().min(start + 24));
                frame.drain(start..end);
            }
            "bytes removed"
        }
        12 => {
            let proto = PROTOCOLS[rng.random_range(0..PROTOCOLS.len())];
            match l3 {
                Some((l2, ETH_IPV4)) => put(frame, l2 + 9, &[proto]),
                Some((l2, ETH_IPV6)) => put(frame, l2 + 6, &[proto]),
                _ => {}
            }
            "protocol"
        }
        _ => {
            // The transport header and what follows: ports, flags, quotes.
            let start = l3.map_or(0, |(l2, _)| l2 + 20);
            let end = frame.len().min(start + 80);
            if start < end {
                let i = rng.random_range(start..end);
                frame[i] = rng.random();
            }
            "transport byte"
        }
    }
}

/// Writes `bytes` at `at` if they fit.
fn put(frame: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = frame.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

fn set_random_byte(rng: &mut SmallRng, frame: &mut [u8], within: usize) -> &'static str {
    let end = frame.len().min(within);
    if end > 0 {
        let i = rng.random_range(0..end);
        frame[i] = [0, 0xff, 0x7f, 0x80, rng.random()][rng.random_range(0..5)];
    }
    "random byte"
}

/// A length near the interesting edges of `actual`, or anything.
fn odd_length(rng: &mut SmallRng, actual: usize) -> u16 {
    let near = actual as i64 + rng.random_range(-8..=8);
    match rng.random_range(0..5) {
        0 => 0,
        1 => 0xffff,
        2 => near.clamp(0, 0xffff) as u16,
        3 => rng.random_range(0..64),
        _ => rng.random(),
    }
}

fn ipv4_field(
    rng: &mut SmallRng,
    frame: &mut [u8],
    l3: Option<(usize, u16)>,
    at: usize,
    name: &'static str,
) -> &'static str {
    if let Some((l2, ETH_IPV4)) = l3 {
        let len = odd_length(rng, frame.len().saturating_sub(l2));
        put(frame, l2 + at, &len.to_be_bytes());
    }
    name
}

fn ipv6_payload_len(
    rng: &mut SmallRng,
    frame: &mut [u8],
    l3: Option<(usize, u16)>,
) -> &'static str {
    if let Some((l2, ETH_IPV6)) = l3 {
        let len = odd_length(rng, frame.len().saturating_sub(l2 + 40));
        put(frame, l2 + 4, &len.to_be_bytes());
    }
    "ipv6 payload length"
}

/// Recomputes the checksum of the IPv4 header at `l2` (when it fits).
pub fn refresh_ipv4_checksum(frame: &mut [u8], l2: usize) {
    let Some(&first) = frame.get(l2) else { return };
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || frame.len() < l2 + ihl {
        return;
    }
    frame[l2 + 10..l2 + 12].copy_from_slice(&[0, 0]);
    let sum = !ones_sum(&frame[l2..l2 + ihl]);
    frame[l2 + 10..l2 + 12].copy_from_slice(&sum.to_be_bytes());
}

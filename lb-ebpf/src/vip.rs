//! Step 2: finds the VIP a packet is for, or says why it is not served.
//!
//! Lookup order: the (address, port, protocol) service, then the port-0
//! service of the address. Fragments and broken packets use the address
//! key instead, which only says "some VIP lives here".

use lb_common::{
    FAMILY_V6, FlowKey, PROTO_TCP, PROTO_UDP, Stat, VIP_F_NO_FRAGMENTS, VIP_F_SOURCE_AFFINITY,
    VIP_KIND_ADDRESS, VIP_KIND_SERVICE, Vip, VipKey, hash::HashInput, vip_filter_bit,
};

use core::mem::MaybeUninit;

use crate::{
    maps::{VIP_ADDRS, VIPS},
    mem::zero_in_place,
    parse::{Packet, is_ipv6_ext_header},
};

/// Finds the VIP of `pkt` and how to hash its flow; `Err` is the outcome
/// for packets not served (passed, or dropped when broken VIP traffic).
#[inline(always)]
pub fn find_vip(pkt: &Packet) -> Result<(Vip, HashInput), Stat> {
    if let Some(fault) = pkt.fault {
        return Err(broken_packet_outcome(&pkt.key, fault));
    }
    if pkt.fragment {
        let vip = fragment_vip(&pkt.key).ok_or(Stat::PassNotVip)?;
        if vip.flags & VIP_F_NO_FRAGMENTS != 0 {
            return Err(Stat::DropFragment);
        }
        return Ok((vip, HashInput::Addresses));
    }
    let vip = service_vip(&pkt.key).ok_or(Stat::PassNotVip)?;
    Ok((vip, hash_input(&vip)))
}

/// The address VIP of a fragment. An IPv6 fragment header followed by
/// another extension header hides the protocol; such a fragment takes the
/// address's TCP VIP, else its UDP VIP, the same choice for every fragment
/// of the datagram, so they all reach one backend.
// Limitation: a UDP datagram fragmented that way, to an address that also
// has a TCP VIP, goes to a backend of the TCP VIP; its protocol is only in
// the first fragment, and the later ones must make the same choice.
#[inline(always)]
fn fragment_vip(key: &FlowKey) -> Option<Vip> {
    if key.family == FAMILY_V6 && is_ipv6_ext_header(key.proto) {
        return address_vip(key, PROTO_TCP).or_else(|| address_vip(key, PROTO_UDP));
    }
    address_vip(key, key.proto)
}

/// The service for the client-to-VIP tuple `key`: exact port, then port 0.
#[inline(always)]
pub fn service_vip(key: &FlowKey) -> Option<Vip> {
    let mut slot = MaybeUninit::uninit();
    let vip_key = vip_key(&mut slot, key, key.proto, VIP_KIND_SERVICE);
    vip_key.port_be = key.dport_be;
    if let Some(vip) = lookup(vip_key) {
        return Some(vip);
    }
    vip_key.port_be = 0;
    lookup(vip_key)
}

/// How a VIP's flows are hashed to its Maglev table.
#[inline(always)]
pub fn hash_input(vip: &Vip) -> HashInput {
    if vip.flags & VIP_F_SOURCE_AFFINITY != 0 {
        HashInput::Source
    } else {
        HashInput::FiveTuple
    }
}

/// True when `key.dst` has a TCP or UDP VIP.
#[inline(always)]
pub fn is_vip_address(key: &FlowKey) -> bool {
    address_vip(key, PROTO_TCP).is_some() || address_vip(key, PROTO_UDP).is_some()
}

/// False when no VIP lives at `key.dst`: such a packet is passed whatever
/// its protocol, ports, fragment bits or faults. One bit of the
/// `VIP_ADDRS` filter, read before the L4 header and without hashing a
/// `VIPS` key (an array lookup the verifier inlines). A set bit may be
/// another address's: the `VIPS` lookups that follow decide.
#[inline(always)]
pub fn may_be_vip_traffic(key: &FlowKey) -> bool {
    let (word, mask) = vip_filter_bit(&key.dst, key.family);
    VIP_ADDRS.get(word).is_some_and(|bits| bits & mask != 0)
}

/// A broken packet is dropped for `fault` if it is VIP traffic, else
/// passed. Its protocol is trusted only when it is TCP or UDP.
#[inline(always)]
fn broken_packet_outcome(key: &FlowKey, fault: Stat) -> Stat {
    let is_vip = match key.proto {
        PROTO_TCP | PROTO_UDP => address_vip(key, key.proto).is_some(),
        _ => is_vip_address(key),
    };
    if is_vip { fault } else { Stat::PassNotVip }
}

/// The address key's VIP for `key.dst` and `proto`.
#[inline(always)]
fn address_vip(key: &FlowKey, proto: u8) -> Option<Vip> {
    let mut slot = MaybeUninit::uninit();
    lookup(vip_key(&mut slot, key, proto, VIP_KIND_ADDRESS))
}

/// A `VipKey` aligned for [`zero_in_place`].
#[repr(C, align(8))]
struct AlignedVipKey(VipKey);

/// Makes `slot` the port-0 key of `kind` for `key.dst` and `proto`.
#[inline(always)]
fn vip_key<'a>(
    slot: &'a mut MaybeUninit<AlignedVipKey>,
    key: &FlowKey,
    proto: u8,
    kind: u8,
) -> &'a mut VipKey {
    // SAFETY: `VipKey` is plain data; zero is its padding's only value.
    let vip_key = &mut unsafe { zero_in_place(slot) }.0;
    vip_key.addr = key.dst;
    vip_key.proto = proto;
    vip_key.family = key.family;
    vip_key.kind = kind;
    vip_key
}

#[inline(always)]
fn lookup(key: &VipKey) -> Option<Vip> {
    // SAFETY: `Vip` is plain data; a value rewritten meanwhile by xlbd is
    // read whole or torn between two valid VIPs, either of which is served.
    unsafe { VIPS.get(key) }.copied()
}

//! Step 2: finds the VIP a packet is for, or says why it is not served.
//!
//! Lookup order: the (address, port, protocol) service, then the port-0
//! service of the address. Fragments and broken packets use the address
//! key instead, which only says "some VIP lives here".

use lb_common::{
    FlowKey, PROTO_TCP, PROTO_UDP, Stat, VIP_F_NO_FRAGMENTS, VIP_F_SOURCE_AFFINITY,
    VIP_KIND_ADDRESS, VIP_KIND_SERVICE, Vip, VipKey, hash::HashInput,
};

use crate::{maps::VIPS, parse::Packet};

/// Finds the VIP of `pkt` and how to hash its flow; `Err` is the outcome
/// for packets not served (passed, or dropped when broken VIP traffic).
#[inline(always)]
pub fn find_vip(pkt: &Packet) -> Result<(Vip, HashInput), Stat> {
    if let Some(fault) = pkt.fault {
        return Err(broken_packet_outcome(&pkt.key, fault));
    }
    if pkt.fragment {
        let vip = address_vip(&pkt.key, pkt.key.proto).ok_or(Stat::PassNotVip)?;
        if vip.flags & VIP_F_NO_FRAGMENTS != 0 {
            return Err(Stat::DropFragment);
        }
        return Ok((vip, HashInput::Addresses));
    }
    let vip = service_vip(&pkt.key).ok_or(Stat::PassNotVip)?;
    Ok((vip, hash_input(&vip)))
}

/// The service for the client-to-VIP tuple `key`: exact port, then port 0.
#[inline(always)]
pub fn service_vip(key: &FlowKey) -> Option<Vip> {
    let mut vip_key = VipKey {
        addr: key.dst,
        port_be: key.dport_be,
        proto: key.proto,
        family: key.family,
        kind: VIP_KIND_SERVICE,
        _pad: [0; 3],
    };
    if let Some(vip) = lookup(&vip_key) {
        return Some(vip);
    }
    vip_key.port_be = 0;
    lookup(&vip_key)
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
    lookup(&VipKey {
        addr: key.dst,
        port_be: 0,
        proto,
        family: key.family,
        kind: VIP_KIND_ADDRESS,
        _pad: [0; 3],
    })
}

#[inline(always)]
fn lookup(key: &VipKey) -> Option<Vip> {
    // SAFETY: `Vip` is plain data; a value rewritten meanwhile by xlbd is
    // read whole or torn between two valid VIPs, either of which is served.
    unsafe { VIPS.get(key) }.copied()
}

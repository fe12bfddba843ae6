//! What `xlb` may do with any frame, checked on every fuzz case:
//!
//! - exactly one `STATS` counter moves, by one, and it names the action
//!   returned;
//! - a frame not addressed to a VIP address is passed, byte for byte;
//! - PASS leaves the frame unchanged;
//! - TX is either the input's IP packet, unchanged, behind a correct outer
//!   header (checksum, protocol 4 or 41, length) to a backend of a VIP at
//!   the inner destination, or a "too big" answer with valid checksums from
//!   the VIP to the input's source that quotes the input;
//! - DROP is counted under a drop reason (the counter check covers it).

use std::{collections::HashMap, net::IpAddr};

use lb_common::Stat;
use xlb::testrun::TestRunOutput;

use super::wire::{
    ETH_IPV4, ETH_IPV6, be16, declared_l3_len, icmpv6_checksum_ok, ip_addrs, link_layer, ones_sum,
    sound_ip_header,
};
use crate::xlb_harness::{GATEWAY_MAC, Lb, MTU, backend_of};

/// What the oracle knows of the configuration.
pub struct XlbWorld {
    /// Backend addresses of the VIPs at each VIP address.
    backends_by_vip_addr: HashMap<IpAddr, Vec<IpAddr>>,
}

impl XlbWorld {
    /// The world of `vips` as written to the program.
    pub fn new(vips: &[crate::xlb_harness::TestVip]) -> Self {
        let mut backends_by_vip_addr: HashMap<IpAddr, Vec<IpAddr>> = HashMap::new();
        for vip in vips {
            let entry = backends_by_vip_addr.entry(vip.addr).or_default();
            entry.extend((0..vip.backends).map(|i| backend_of(vip, i).1));
        }
        Self {
            backends_by_vip_addr,
        }
    }

    fn is_vip_addr(&self, addr: IpAddr) -> bool {
        self.backends_by_vip_addr.contains_key(&addr)
    }
}

/// The one counter that moved between `before` and `after`.
///
/// # Errors
///
/// When none or several moved, or one moved by more than one.
pub fn one_counter_moved<S: Copy + std::fmt::Debug>(
    all: &[S],
    before: &[u64],
    after: &[u64],
) -> Result<S, String> {
    let moved: Vec<(S, u64)> = all
        .iter()
        .zip(before.iter().zip(after))
        .filter(|(_, (b, a))| a != b)
        .map(|(s, (b, a))| (*s, a - b))
        .collect();
    match moved.as_slice() {
        [(stat, 1)] => Ok(*stat),
        _ => Err(format!(
            "counters moved: {moved:?} (exactly one by one expected)"
        )),
    }
}

/// Checks one `xlb` case.
///
/// # Errors
///
/// Says which invariant failed.
pub fn check_xlb(
    world: &XlbWorld,
    lb: &Lb,
    input: &[u8],
    out: &TestRunOutput,
    before: &[u64],
) -> Result<Stat, String> {
    let stat = one_counter_moved(&Stat::ALL, before, &lb.stats())?;
    let action = match stat.action() {
        "pass" => 2,
        "tx" => 3,
        _ => 1,
    };
    if out.action != action {
        return Err(format!("action {} but counter {stat:?}", out.action));
    }

    let l3 = link_layer(input);
    let dst = l3
        .and_then(|(l2, et)| ip_addrs(input, l2, et))
        .map(|(_, d)| d);
    let for_vip = dst.is_some_and(|d| world.is_vip_addr(d));
    if !for_vip && (stat.action() != "pass" || out.frame != input) {
        return Err(format!("non-VIP frame not passed unchanged ({stat:?})"));
    }

    match stat {
        _ if stat.action() == "pass" && out.frame != input => {
            Err(format!("passed with changes ({stat:?})"))
        }
        Stat::TxForwarded | Stat::TxForwardedUntracked | Stat::TxIcmpSteered => {
            let (l2, et) = l3.ok_or("tx of a frame without link layer")?;
            check_encapsulated(world, input, &out.frame, l2, et)
        }
        Stat::TxIcmpTooBig => {
            let (l2, et) = l3.ok_or("tx of a frame without link layer")?;
            check_too_big(world, input, &out.frame, l2, et)
        }
        _ => Ok(()),
    }
    .map(|()| stat)
}

fn check_encapsulated(
    world: &XlbWorld,
    input: &[u8],
    out: &[u8],
    l2: usize,
    et: u16,
) -> Result<(), String> {
    let inner = &input[l2..];
    let inner_v4 = et == ETH_IPV4;
    if !sound_ip_header(inner, inner_v4) {
        return Err("tx of an unsound inner packet".into());
    }
    let (_, inner_dst) = ip_addrs(input, l2, et).ok_or("tx of a frame without addresses")?;
    let backends = &world.backends_by_vip_addr[&inner_dst];
    let inner_len = declared_l3_len(inner, inner_v4).ok_or("inner length")?;

    if out.len() < l2 || out[..6] != GATEWAY_MAC || out[6..12] != input[..6] {
        return Err("encapsulated frame has wrong MACs".into());
    }
    if out[12..l2 - 2] != input[12..l2 - 2] {
        return Err("encapsulated frame lost its VLAN tags".into());
    }
    let want_proto = if inner_v4 { 4 } else { 41 };
    let outer = &out[l2..];
    let (outer_len, backend) = match be16(out, l2 - 2) {
        Some(ETH_IPV4) if outer.len() >= 20 => {
            let ok = outer[0] == 0x45
                && ones_sum(&outer[..20]) == 0xffff
                && outer[9] == want_proto
                && be16(outer, 2) == Some((20 + inner_len) as u16);
            let dst = IpAddr::from(<[u8; 4]>::try_from(&outer[16..20]).map_err(|e| e.to_string())?);
            (ok.then_some(20), dst)
        }
        Some(ETH_IPV6) if outer.len() >= 40 => {
            let ok = outer[0] >> 4 == 6
                && outer[6] == want_proto
                && be16(outer, 4) == Some(inner_len as u16);
            let dst =
                IpAddr::from(<[u8; 16]>::try_from(&outer[24..40]).map_err(|e| e.to_string())?);
            (ok.then_some(40), dst)
        }
        _ => (None, inner_dst),
    };
    let outer_len = outer_len.ok_or("outer header wrong (version, checksum, protocol, length)")?;
    if !backends.contains(&backend) {
        return Err(format!("sent to {backend}, not a backend of {inner_dst}"));
    }
    if outer_len + inner_len > MTU as usize {
        return Err(format!(
            "encapsulated to {} bytes, past the MTU",
            outer_len + inner_len
        ));
    }
    if out[l2 + outer_len..] != *inner {
        return Err("inner packet changed".into());
    }
    Ok(())
}

fn check_too_big(
    world: &XlbWorld,
    input: &[u8],
    out: &[u8],
    l2: usize,
    et: u16,
) -> Result<(), String> {
    let (src, dst) = ip_addrs(input, l2, et).ok_or("answer to a frame without addresses")?;
    if out.len() < l2 || out[..6] != input[6..12] || out[6..12] != input[..6] {
        return Err("answer has wrong MACs".into());
    }
    if out[12..l2 - 2] != input[12..l2 - 2] || be16(out, l2 - 2) != Some(et) {
        return Err("answer changed the VLAN tags or EtherType".into());
    }
    let v4 = et == ETH_IPV4;
    let input_len = declared_l3_len(&input[l2..], v4).unwrap_or(0);
    let backends = world
        .backends_by_vip_addr
        .get(&dst)
        .ok_or("answer for a non-VIP")?;
    let outer = if backends.iter().any(IpAddr::is_ipv6) {
        40
    } else {
        20
    };
    if input_len + outer <= MTU as usize {
        return Err(format!("a {input_len}-byte packet answered as too big"));
    }
    let ip = &out[l2..];
    let (hlen, quote_start) = if v4 { (20, 28) } else { (40, 48) };
    if ip.len() < quote_start || declared_l3_len(ip, v4) != Some(ip.len()) {
        return Err("answer length fields disagree with the frame".into());
    }
    let (from, to) = ip_addrs(out, l2, et).ok_or("answer addresses")?;
    if (from, to) != (dst, src) {
        return Err("answer not from the VIP to the client".into());
    }
    let icmp = &ip[hlen..];
    let valid = if v4 {
        ip[0] == 0x45
            && ip[9] == 1
            && ones_sum(&ip[..20]) == 0xffff
            && icmp[..2] == [3, 4]
            && ones_sum(icmp) == 0xffff
    } else {
        ip[0] >> 4 == 6
            && ip[6] == 58
            && icmp[0] == 2
            && icmpv6_checksum_ok(&ip[8..24], &ip[24..40], icmp)
    };
    if !valid {
        return Err("answer header, type or checksum wrong".into());
    }
    let quote = &icmp[8..];
    if input.get(l2..l2 + quote.len()) != Some(quote) {
        return Err("answer does not quote the input".into());
    }
    Ok(())
}

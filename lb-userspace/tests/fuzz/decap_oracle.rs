//! What `xlb_decap` may do with any frame, checked on every fuzz case:
//! exactly one `DECAP_STATS` counter moves, by one, naming the action;
//! a frame whose outer destination is not one of its addresses passes
//! unchanged; PASS is the input unchanged or the input with exactly its
//! outer header removed and the EtherType of the inner packet; a drop is
//! counted under a drop reason.

use std::net::IpAddr;

use lb_common::DecapStat;
use xlb::testrun::TestRunOutput;

use super::{
    oracle::one_counter_moved,
    sources::{DECAP_V4, DECAP_V6},
    wire::{ETH_IPV4, ETH_IPV6, be16, ip_addrs, link_layer, ones_sum},
};

/// Checks one `xlb_decap` case, given the counters around it.
///
/// # Errors
///
/// Says which invariant failed.
pub fn check_decap(
    input: &[u8],
    out: &TestRunOutput,
    before: &[u64],
    after: &[u64],
) -> Result<DecapStat, String> {
    let stat = one_counter_moved(&DecapStat::ALL, before, after)?;
    let passes = matches!(stat, DecapStat::Decapsulated | DecapStat::Passed);
    if out.action != if passes { 2 } else { 1 } {
        return Err(format!("action {} but counter {stat:?}", out.action));
    }

    let l3 = link_layer(input);
    let ours = l3
        .and_then(|(l2, et)| ip_addrs(input, l2, et))
        .is_some_and(|(_, dst)| dst == IpAddr::from(DECAP_V4) || dst == IpAddr::from(DECAP_V6));
    if !ours && (stat != DecapStat::Passed || out.frame != input) {
        return Err(format!(
            "frame for another host not passed unchanged ({stat:?})"
        ));
    }

    match stat {
        DecapStat::Passed if out.frame != input => Err("passed with changes".into()),
        DecapStat::Decapsulated => {
            let (l2, et) = l3.ok_or("decapsulated a frame without link layer")?;
            check_decapsulated(input, &out.frame, l2, et)
        }
        _ => Ok(()),
    }
    .map(|()| stat)
}

fn check_decapsulated(input: &[u8], out: &[u8], l2: usize, et: u16) -> Result<(), String> {
    let ip = &input[l2..];
    let (outer_len, proto) = match et {
        ETH_IPV4 => {
            let len = usize::from(ip[0] & 0x0f) * 4;
            let sound = ip.len() >= len && ones_sum(&ip[..len]) == 0xffff;
            if !sound || be16(ip, 6).is_none_or(|f| f & 0x3fff != 0) {
                return Err("decapsulated a bad outer header or a fragment".into());
            }
            (len, ip[9])
        }
        ETH_IPV6 => (40, ip[6]),
        _ => return Err("decapsulated a non-IP frame".into()),
    };
    let (inner_et, inner_version) = match proto {
        4 => (ETH_IPV4, 4),
        41 => (ETH_IPV6, 6),
        _ => return Err(format!("decapsulated outer protocol {proto}")),
    };
    let inner = ip
        .get(outer_len..)
        .ok_or("outer header longer than the frame")?;
    if inner.first().map(|b| b >> 4) != Some(inner_version) {
        return Err("inner version does not match the outer protocol".into());
    }
    let mut want = input[..l2 - 2].to_vec();
    want.extend_from_slice(&inner_et.to_be_bytes());
    want.extend_from_slice(inner);
    if out != want {
        return Err("output is not the input without its outer header".into());
    }
    Ok(())
}

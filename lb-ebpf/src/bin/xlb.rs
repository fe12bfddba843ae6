//! `xlb`: the XDP load balancer.
//!
//! Each packet goes through the same steps: parse it, find its VIP, screen
//! its client (deny rules), choose a backend (by the routing policy for a
//! new flow), encapsulate it to that backend (or answer it with an ICMP
//! error), and count exactly one outcome in `STATS`. Anything that is not
//! VIP traffic is passed untouched, so the host stays reachable.

#![no_std]
#![no_main]

use core::mem::MaybeUninit;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use lb_common::Stat;
use lb_ebpf::{
    encap, flow,
    flow::Choice,
    icmp, maps,
    parse::{Packet, parse_packet},
    policy,
    vip::find_vip,
};

/// Entry point: runs the steps and turns their outcome into an action.
#[xdp]
pub fn xlb(ctx: XdpContext) -> u32 {
    let stat = match try_xlb(&ctx) {
        Ok(stat) | Err(stat) => stat,
    };
    maps::count(stat);
    action(stat)
}

/// The steps; both arms carry the outcome to count.
#[inline(always)]
fn try_xlb(ctx: &XdpContext) -> Result<Stat, Stat> {
    let mut slot = MaybeUninit::uninit();
    let pkt = Packet::empty(&mut slot);
    parse_packet(ctx, pkt)?;
    let pkt = &*pkt;

    let (choice, sent) = if pkt.is_icmp() && pkt.fault.is_none() && !pkt.fragment {
        (icmp::steered_flow(ctx, pkt)?, Stat::TxIcmpSteered)
    } else {
        let (vip, input) = find_vip(pkt)?;
        let rules = policy::screen(&pkt.key, &vip)?;
        let track = !pkt.fragment;
        let choice = flow::select_backend(&pkt.key, &vip, input, rules, pkt.tcp_syn, track)?;
        let sent = if choice.guarded {
            Stat::TxForwardedUntracked
        } else {
            Stat::TxForwarded
        };
        (choice, sent)
    };

    forward(ctx, pkt, &choice, sent)
}

/// Encapsulates to the chosen backend and counts the traffic (on the
/// table it was chosen in), or answers a packet that would outgrow the MTU.
#[inline(always)]
fn forward(ctx: &XdpContext, pkt: &Packet, choice: &Choice, sent: Stat) -> Result<Stat, Stat> {
    let settings = maps::settings().ok_or(Stat::DropNoRoute)?;
    let outer = encap::outer_header_len(&choice.backend);
    let mtu = encap::mtu(settings);
    if outer + pkt.l3_len > mtu {
        // An ICMP error is never answered with another.
        if sent == Stat::TxIcmpSteered {
            return Err(Stat::DropTooBig);
        }
        return icmp::reply_too_big(ctx, pkt, mtu.saturating_sub(outer) as u16);
    }

    encap::encapsulate(ctx, pkt, choice, settings)?;

    maps::count_traffic(
        choice.table_id,
        choice.backend_id,
        pkt.l3_len,
        choice.new_flow,
    );
    if choice.inserted {
        maps::count_flow_insert();
    }
    Ok(sent)
}

/// The XDP action an outcome means.
#[inline(always)]
fn action(stat: Stat) -> u32 {
    match stat {
        Stat::PassNotIp | Stat::PassNotVip | Stat::PassIcmp => xdp_action::XDP_PASS,
        Stat::TxForwarded
        | Stat::TxForwardedUntracked
        | Stat::TxIcmpSteered
        | Stat::TxIcmpTooBig => xdp_action::XDP_TX,
        _ => xdp_action::XDP_DROP,
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

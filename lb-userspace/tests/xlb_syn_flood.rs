//! The SYN guard through `BPF_PROG_TEST_RUN`: SYNs beyond each CPU's
//! new-flow budget are forwarded by the Maglev table alone, so a flood of
//! spoofed SYNs cannot evict established flows from a full `FLOWS`.
//!
//! Needs root: each test loads the program into a fresh network namespace.
//! The budget is per CPU, so each test pins its thread to one CPU.

#[path = "common/cpu.rs"]
mod cpu;
#[path = "common/xlb_cases.rs"]
#[allow(dead_code, reason = "these tests use part of the helpers")]
mod xlb_cases;
#[path = "common/xlb_checks.rs"]
mod xlb_checks;
#[path = "common/xlb_frames.rs"]
mod xlb_frames;
#[path = "common/xlb_harness.rs"]
mod xlb_harness;
#[path = "common/xlb_hostile.rs"]
#[allow(dead_code, reason = "these tests use part of the helpers")]
mod xlb_hostile;
#[path = "common/xlb_world.rs"]
mod xlb_world;

use std::net::IpAddr;

use cpu::pin_to_one_cpu;
use lb_common::{BACKEND_F_IN_TABLE, BACKEND_F_UP, FlowKey, Stat, hash::HashInput};
use xlb_frames::*;
use xlb_harness::Lb;
use xlb_world::*;

/// Flows the flood test establishes before the flood.
const ESTABLISHED: u16 = 200;
/// Spoofed SYNs in the flood, about 20 times the table.
const FLOOD: u32 = 20_000;
/// `FLOWS` capacity in the flood test.
const SMALL_TABLE: u32 = 1024;

#[test]
fn syns_beyond_the_burst_are_forwarded_by_maglev_but_not_tracked() {
    pin_to_one_cpu();
    let mut lb = standard_lb();
    // One new flow a second: nothing refills during the test.
    lb.set_syn_guard(1, 3);
    let vip = V4_TCP;

    for sport in 41_000..41_003 {
        let (key, syn, _) = client_flow_v4(&vip, sport);
        forwarded_backend(&lb, &syn, &key);
        assert!(
            lb.flow(&key).is_some(),
            "SYN {sport} within the burst tracked"
        );
    }
    assert_eq!(lb.stat(Stat::TxForwarded), 3);

    let (key, syn, ack) = client_flow_v4(&vip, 41_003);
    let backend = forwarded_backend(&lb, &syn, &key);
    assert_eq!(
        backend,
        lb.maglev_backend(vip.id, &key, HashInput::FiveTuple),
        "the guarded SYN goes where Maglev sends it"
    );
    assert!(lb.flow(&key).is_none(), "the guarded SYN enters no flow");
    assert_eq!(lb.stat(Stat::TxForwardedUntracked), 1);
    assert_eq!(lb.stat(Stat::TxForwarded), 3, "one counter per packet");

    assert_eq!(forwarded_backend(&lb, &ack, &key), backend, "ACK follows");
    let flow = lb.flow(&key).expect("the ACK enters the flow");
    assert_eq!(flow.backend_id, backend);
}

#[test]
fn a_syn_flood_does_not_evict_established_flows_with_the_guard_on() {
    pin_to_one_cpu();
    let flood = syn_flood(100, 100, false);
    eprintln!(
        "guard on: {}/{ESTABLISHED} established flows kept with their backend, \
         {} of {FLOOD} SYNs guarded, {} tracked",
        flood.kept, flood.guarded, flood.tracked
    );
    assert_eq!(flood.kept, u32::from(ESTABLISHED), "every flow kept");
    assert_eq!(flood.guarded + flood.tracked, u64::from(FLOOD));
    assert!(
        flood.guarded >= u64::from(FLOOD) * 9 / 10,
        "most of the flood guarded"
    );
}

#[test]
fn a_syn_flood_evicts_established_flows_with_the_guard_off() {
    // The contrast that shows the guard is what keeps them.
    pin_to_one_cpu();
    let flood = syn_flood(0, 0, false);
    eprintln!(
        "guard off: {}/{ESTABLISHED} established flows kept, {} of {FLOOD} SYNs guarded",
        flood.kept, flood.guarded
    );
    assert_eq!(flood.guarded, 0);
    assert!(
        flood.kept < u32::from(ESTABLISHED) / 2,
        "most flows evicted: {} kept",
        flood.kept
    );
}

#[test]
fn established_flows_carrying_traffic_through_a_syn_flood_keep_their_backends() {
    pin_to_one_cpu();
    let flood = syn_flood(100, 100, true);
    eprintln!(
        "guard on, under traffic: {} packets of established flows during the flood ({} flows \
         that the new table sends elsewhere), {} answered by another backend; \
         {}/{ESTABLISHED} flows kept, {} of {FLOOD} SYNs guarded",
        flood.carried, flood.rehashed, flood.moved, flood.kept, flood.guarded
    );
    assert!(flood.rehashed > 0, "the new table must move some flows");
    assert_eq!(flood.moved, 0, "no established packet changed backend");
    assert_eq!(flood.carried, u32::from(ESTABLISHED) * TRAFFIC_ROUNDS);
    assert_eq!(flood.kept, u32::from(ESTABLISHED), "every flow kept");
    assert!(flood.guarded >= u64::from(FLOOD) * 9 / 10);
}

/// Times each established flow sends a packet during a flood under traffic.
const TRAFFIC_ROUNDS: u32 = 20;

/// What a flood left behind.
struct Flood {
    /// Established flows still tracked with their first backend.
    kept: u32,
    /// SYNs counted as `TxForwardedUntracked`.
    guarded: u64,
    /// SYNs counted as `TxForwarded`.
    tracked: u64,
    /// Packets the established flows sent during the flood.
    carried: u32,
    /// Of those, how many went to another backend than the flow's first.
    moved: u32,
    /// Established flows the table in force during the flood would send
    /// to another backend: only their tracked entry keeps them.
    rehashed: u32,
}

/// Establishes `ESTABLISHED` flows in a `SMALL_TABLE` table (by ACKs, as
/// flows already open when xlb started), then sends `FLOOD` SYNs from
/// pseudo-random spoofed sources with the guard at `per_s` and `burst`;
/// with `traffic`, a fourth backend joins the table first (so some flows
/// stay only by their tracked entry), and every established flow sends a
/// packet `TRAFFIC_ROUNDS` times, spread through the flood.
fn syn_flood(per_s: u32, burst: u32, traffic: bool) -> Flood {
    let vip = V4_TCP;
    let mut lb = Lb::load_with_flow_capacity(SMALL_TABLE);
    lb.add_vip(&vip);
    lb.set_syn_guard(per_s, burst);

    let established: Vec<(FlowKey, Vec<u8>, u32)> = (0..ESTABLISHED)
        .map(|i| {
            let (key, _, ack) = client_flow_v4(&vip, 50_000 + i);
            let backend = forwarded_backend(&lb, &ack, &key);
            (key, ack, backend)
        })
        .collect();
    let before = lb.stat(Stat::TxForwarded);
    let mut rehashed = 0;
    if traffic {
        let joining = xlb_harness::backend_of(&vip, vip.backends);
        lb.set_backend(
            joining.0,
            &vip,
            joining.1,
            BACKEND_F_UP | BACKEND_F_IN_TABLE,
        );
        lb.backend_addrs.insert(joining.0, joining.1);
        let all: Vec<(u32, IpAddr)> = lb.backend_addrs.iter().map(|(&id, &a)| (id, a)).collect();
        lb.swap_table(&vip, xlb_harness::maglev_table(&all));
        let elsewhere = |(key, _, backend): &&(FlowKey, Vec<u8>, u32)| {
            lb.maglev_backend(vip.id, key, HashInput::FiveTuple) != *backend
        };
        rehashed = established.iter().filter(elsewhere).count() as u32;
    }

    let IpAddr::V4(dst) = vip.addr else {
        panic!("IPv4 VIP expected")
    };
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let (mut carried, mut moved) = (0, 0);
    let every = FLOOD / TRAFFIC_ROUNDS;
    for n in 0..FLOOD {
        if traffic && n % every == every / 2 {
            for (key, ack, backend) in &established {
                carried += 1;
                moved += u32::from(forwarded_backend(&lb, ack, key) != *backend);
            }
        }
        let r = xorshift(&mut rng);
        let src = [10, (r >> 8) as u8, (r >> 16) as u8, (r >> 24) as u8];
        let sport = (r >> 32) as u16 | 1024;
        let syn = ether4(&ipv4(
            src,
            dst.octets(),
            TCP,
            &tcp(sport, vip.port, true, 0),
            V4_DF,
        ));
        assert_eq!(lb.run(&syn).action, XDP_TX, "spoofed SYN forwarded");
    }

    let kept = established
        .iter()
        .filter(|(key, _, backend)| lb.flow(key).is_some_and(|f| f.backend_id == *backend))
        .count();
    Flood {
        kept: kept as u32,
        guarded: lb.stat(Stat::TxForwardedUntracked),
        tracked: lb.stat(Stat::TxForwarded) - before - u64::from(carried),
        carried,
        moved,
        rehashed,
    }
}

/// Marsaglia's xorshift64: a fixed, repeatable stream of spoofed sources.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

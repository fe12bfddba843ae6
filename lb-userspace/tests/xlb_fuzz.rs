//! Packet fuzzer of `xlb` and `xlb_decap` through `BPF_PROG_TEST_RUN`.
//!
//! Each program first meets every seed frame cut at every length, then
//! `XLB_FUZZ_CASES` random cases (default 20 000) from a generator seeded
//! with `XLB_FUZZ_SEED` (printed): seed frames and generated ones
//! (IPv6 extension chains past the supported depth, ICMP errors quoting
//! garbage, packets of every size, encapsulated packets), mutated with
//! cuts, stray bytes, bad lengths and header lengths, VLAN stacks and
//! fragment bits. Two of `xlb`'s VIPs carry routing policy (a tenant
//! budget and a canary split on one, a deny on the other), so denied and
//! rate-limited packets and canary backends are fuzzed too. The oracles
//! (`fuzz/oracle.rs`, `fuzz/decap_oracle.rs`) check every case.
//! `cargo xtask bench --fuzz-cases N` runs millions.
//!
//! Needs root: the programs are loaded into the kernel.

#[path = "common/xlb_cases.rs"]
mod xlb_cases;
#[path = "common/xlb_checks.rs"]
mod xlb_checks;
#[path = "common/xlb_frames.rs"]
mod xlb_frames;
#[path = "common/xlb_harness.rs"]
mod xlb_harness;
#[path = "common/xlb_hostile.rs"]
mod xlb_hostile;
#[path = "common/xlb_policy_world.rs"]
mod xlb_policy_world;
#[path = "common/xlb_world.rs"]
mod xlb_world;

#[path = "fuzz/decap_oracle.rs"]
mod decap_oracle;
#[path = "fuzz/driver.rs"]
mod driver;
#[path = "fuzz/mutate.rs"]
mod mutate;
#[path = "fuzz/oracle.rs"]
mod oracle;
#[path = "fuzz/sources.rs"]
mod sources;
#[path = "fuzz/wire.rs"]
mod wire;

use std::net::IpAddr;

use driver::{MIN_FRAME, Report, case_count, next_frame, seeded_rng};
use lb_common::DecapStat;
use lb_common::{VIP_F_CANARY, VIP_F_SOURCE_DENY, VIP_F_SOURCE_RULES, policy::CANARY_SHARE_ALL};
use oracle::{XlbWorld, check_xlb};
use sources::{
    DECAP_GENERATORS, DECAP_V4, DECAP_V6, V4_DENIED, V4_POLICY, V4_POLICY_CANARY, VIPS,
    XLB_GENERATORS,
};
use xlb::{
    decap::Decap,
    testrun::{TestRunOptions, test_run},
};
use xlb_harness::Lb;
use xlb_policy_world::{class_rule, deny_rule};
use xlb_world::CLIENT4;

/// Every seed cut at every length, then the random cases.
fn all_cases(
    seeds: &[Vec<u8>],
    generators: &[sources::Generator],
    program: &str,
    mut run: impl FnMut(&[u8], &str),
) {
    for (s, seed) in seeds.iter().enumerate() {
        for len in MIN_FRAME..=seed.len() {
            run(&seed[..len], &format!("seed {s} cut to {len} bytes"));
        }
    }
    let mut rng = seeded_rng(program);
    for _ in 0..case_count() {
        let (frame, how) = next_frame(&mut rng, seeds, generators);
        // The kernel refuses frames shorter than an Ethernet header.
        if frame.len() >= MIN_FRAME {
            run(&frame, &how);
        }
    }
}

fn run_xlb(lb: &Lb, world: &XlbWorld, frame: &[u8]) -> Result<lb_common::Stat, String> {
    let before = lb.stats();
    let out = test_run(lb.prog(), frame, TestRunOptions::default())
        .map_err(|e| format!("test run failed: {e}"))?;
    check_xlb(world, lb, frame, &out, &before)
}

/// `standard_lb` plus two VIPs with routing policy, so the fuzzer also
/// meets source rules, a tenant budget, a canary split and a deny.
fn policy_lb() -> Lb {
    let mut lb = xlb_world::standard_lb();
    lb.add_vip(&V4_POLICY);
    lb.add_pool_table(&V4_POLICY_CANARY, V4_POLICY.id);
    lb.edit_table(V4_POLICY.id, Some(&V4_POLICY), |vip| {
        vip.flags |= VIP_F_SOURCE_RULES | VIP_F_CANARY;
        vip.canary_id = V4_POLICY_CANARY.id;
        vip.canary_share = CANARY_SHARE_ALL / 2;
    });
    let client = IpAddr::from(CLIENT4);
    lb.add_source_rule(V4_POLICY.id, client, 32, class_rule(1));
    // Small enough that a run of SYNs meets the limit.
    lb.set_tenant_limit(1, 20, 5);

    lb.add_vip(&V4_DENIED);
    lb.edit_table(V4_DENIED.id, Some(&V4_DENIED), |vip| {
        vip.flags |= VIP_F_SOURCE_RULES | VIP_F_SOURCE_DENY;
    });
    lb.add_source_rule(V4_DENIED.id, client, 24, deny_rule());
    lb
}

#[test]
fn xlb_keeps_every_invariant_on_cut_mutated_and_generated_frames() {
    let lb = policy_lb();
    let world = XlbWorld::new(&VIPS);
    let seeds: Vec<Vec<u8>> = xlb_cases::cases().into_iter().map(|c| c.frame).collect();
    let mut report = Report::new("xlb");
    all_cases(&seeds, &XLB_GENERATORS, "xlb", |frame, how| {
        report.record(run_xlb(&lb, &world, frame), how, frame);
    });
    report.finish();
}

fn decap_counters(decap: &Decap) -> Vec<u64> {
    let counters = decap.counters().expect("read DECAP_STATS");
    DecapStat::ALL.iter().map(|&s| counters.get(s)).collect()
}

fn run_decap(decap: &Decap, frame: &[u8]) -> Result<DecapStat, String> {
    let before = decap_counters(decap);
    let prog = decap.program().expect("xlb_decap program");
    let out = test_run(prog, frame, TestRunOptions::default())
        .map_err(|e| format!("test run failed: {e}"))?;
    decap_oracle::check_decap(frame, &out, &before, &decap_counters(decap))
}

#[test]
fn xlb_decap_keeps_every_invariant_on_cut_mutated_and_generated_frames() {
    let mut decap = Decap::load().expect("xlb_decap loads (run as root)");
    let ours = [IpAddr::from(DECAP_V4), IpAddr::from(DECAP_V6)];
    decap.set_addrs(&ours).expect("write DECAP_ADDRS");
    let mut rng = seeded_rng("xlb_decap seeds");
    let seeds: Vec<Vec<u8>> = (0..48).map(|_| sources::encapsulated(&mut rng)).collect();
    let mut report = Report::new("xlb_decap");
    all_cases(&seeds, &DECAP_GENERATORS, "xlb_decap", |frame, how| {
        report.record(run_decap(&decap, frame), how, frame);
    });
    report.finish();
}

#[test]
fn xlb_oracle_rejects_a_changed_inner_packet_a_bad_checksum_and_a_changed_pass() {
    let lb = xlb_world::standard_lb();
    let world = XlbWorld::new(&VIPS);
    let (_, syn, _) = xlb_world::client_flow_v4(&xlb_world::V4_TCP, 40_123);
    let check = |frame: &[u8], tamper: fn(&mut Vec<u8>)| {
        let before = lb.stats();
        let mut out = test_run(lb.prog(), frame, TestRunOptions::default()).expect("test run");
        tamper(&mut out.frame);
        check_xlb(&world, &lb, frame, &out, &before)
    };

    assert!(check(&syn, |_| {}).is_ok(), "a real encapsulation passes");
    let inner = check(&syn, |f| *f.last_mut().expect("bytes") ^= 1);
    assert!(inner.is_err(), "a changed inner byte is caught");
    let outer_sum = check(&syn, |f| f[14 + 10] ^= 1);
    assert!(outer_sum.is_err(), "a bad outer checksum is caught");

    let mut other = syn.clone();
    other[14 + 19] = 99; // 192.0.2.99: no VIP there
    assert!(check(&other, |_| {}).is_ok(), "a real pass passes");
    let changed = check(&other, |f| f[0] ^= 1);
    assert!(changed.is_err(), "a changed passed frame is caught");
}

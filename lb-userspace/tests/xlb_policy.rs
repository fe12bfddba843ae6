//! Routing policy through `BPF_PROG_TEST_RUN`: port pools, source
//! prefixes to pools (longest wins), denied prefixes, the canary split,
//! fallback between pools and per-tenant new-flow limits. Each row and
//! test asserts the action, the backend (outer destination) and the
//! counters.
//!
//! Needs root: each test loads the program into a fresh network namespace.
//! The tenant budget is per CPU, so that test pins its thread to one CPU.

#[path = "common/cpu.rs"]
mod cpu;
#[path = "common/xlb_checks.rs"]
mod xlb_checks;
#[path = "common/xlb_frames.rs"]
mod xlb_frames;
#[path = "common/xlb_harness.rs"]
mod xlb_harness;
#[path = "common/xlb_policy_world.rs"]
mod xlb_policy_world;
#[path = "common/xlb_world.rs"]
mod xlb_world;

use std::net::IpAddr;

use cpu::pin_to_one_cpu;
use lb_common::{
    Stat, VIP_F_CANARY, VIP_F_FALLBACK, VIP_F_SOURCE_DENY, policy::CANARY_SHARE_ALL, split_bits,
};
use xlb_harness::TestVip;
use xlb_policy_world::*;
use xlb_world::{XDP_TX, outer_dst};

/// `FLOWS` capacity: room for every flow of the canary test, so none is
/// evicted before it is sent again.
const ROOMY: u32 = 400_000;

fn v6(s: &str) -> IpAddr {
    s.parse().expect("IPv6 address")
}

/// One row of the selection table: a client's first packet and the
/// table (pool) whose Maglev backend it must reach.
struct Row {
    what: &'static str,
    src: IpAddr,
    vip: TestVip,
    port: u16,
    table: u32,
}

fn row(what: &'static str, src: IpAddr, vip: TestVip, port: u16, table: u32) -> Row {
    Row {
        what,
        src,
        vip,
        port,
        table,
    }
}

#[test]
fn each_rule_sends_its_clients_to_its_pool() {
    let lb = policy_lb(65_536);
    let anyone = ip4([198, 51, 100, 7]);
    #[rustfmt::skip]
    let rows = [
        row("a client without a rule uses the default pool", anyone, LLM, 8000, LLM.id),
        row("port 8001 uses its port pool", anyone, LLM, 8001, EMBEDDINGS.id),
        row("10.0.0.0/8 goes to chat-any", ip4([10, 9, 0, 1]), LLM, 8000, CHAT_ANY.id),
        row("10.1.0.0/16 beats the /8", ip4([10, 1, 9, 9]), LLM, 8000, CHAT_US.id),
        row("10.1.7.0/24 beats the /16", ip4([10, 1, 7, 7]), LLM, 8000, CHAT_LAB.id),
        row("rules are per table: 8001 has none", ip4([10, 1, 7, 7]), LLM, 8001, EMBEDDINGS.id),
        row("IPv6 without a rule: the default pool", v6("2001:db8:bb::1"), LLM6, 8000, LLM6.id),
        row("2001:db8:aa::/48 goes to its region", v6("2001:db8:aa:2::1"), LLM6, 8000, REGION6.id),
        row("2001:db8:aa:1::/64 beats the /48", v6("2001:db8:aa:1::1"), LLM6, 8000, SITE6.id),
        row("IPv6 never matches an IPv4 rule", v6("a01:909::1"), LLM6, 8000, LLM6.id),
        row("another VIP ignores this VIP's rules", ip4([10, 1, 9, 9]), LLM_UDP, 9000, LLM_UDP.id),
    ];
    for (i, r) in rows.iter().enumerate() {
        let what = r.what;
        let flow = client(r.src, 20_000 + i as u16, &r.vip, r.port);
        let before = lb.traffic("VIP_STATS", r.table);
        assert_route(&lb, what, &flow.first, &flow.key, Route::Table(r.table));
        let after = lb.traffic("VIP_STATS", r.table);
        let moved = (
            after.packets - before.packets,
            after.new_flows - before.new_flows,
        );
        assert_eq!(
            moved,
            (1, 1),
            "{what}: one packet, one new flow on table {}",
            r.table
        );

        // The flow's later packets follow it (tracked, same table).
        let backend = lb.flow(&flow.key).expect("tracked").backend_id;
        let out = lb.run(&flow.later);
        assert_eq!(out.action, XDP_TX, "{what}: later packet forwarded");
        let later = lb.backend_at(outer_dst(&out.frame, 14));
        assert_eq!(later, backend, "{what}: later packet to the same backend");
    }
}

#[test]
fn a_denied_prefix_is_dropped_and_counted_even_on_a_tracked_flow() {
    let mut lb = policy_lb(65_536);
    lb.add_source_rule(LLM.id, ip4([203, 0, 113, 0]), 24, deny_rule());
    let denied = client(ip4([203, 0, 113, 9]), 30_000, &LLM, 8000);
    let what = "a SYN from a denied prefix";
    assert_route(
        &lb,
        what,
        &denied.first,
        &denied.key,
        Route::Dropped(Stat::DropDenied),
    );
    assert!(lb.flow(&denied.key).is_none(), "{what}: enters no flow");
    assert_eq!(
        lb.policy(LLM.id).denied,
        1,
        "{what}: counted on the VIP's table"
    );

    // A connection open before its prefix is denied loses its next packet.
    let open = client(ip4([203, 0, 114, 5]), 30_001, &LLM, 8000);
    assert_route(
        &lb,
        "before the deny",
        &open.first,
        &open.key,
        Route::Table(LLM.id),
    );
    lb.add_source_rule(LLM.id, ip4([203, 0, 114, 0]), 24, deny_rule());
    let what = "a tracked flow's packet after the deny";
    assert_route(
        &lb,
        what,
        &open.later,
        &open.key,
        Route::Dropped(Stat::DropDenied),
    );
    assert_eq!(lb.policy(LLM.id).denied, 2, "{what}: counted");

    // Without VIP_F_SOURCE_DENY only new flows read the rules: tracked
    // packets skip the trie.
    lb.edit_table(LLM.id, Some(&LLM), |v| v.flags &= !VIP_F_SOURCE_DENY);
    let out = lb.run(&open.later);
    assert_eq!(out.action, XDP_TX, "tracked packet without the deny flag");
    let what = "a new flow without the deny flag";
    let fresh = client(ip4([203, 0, 114, 6]), 30_002, &LLM, 8000);
    assert_route(
        &lb,
        what,
        &fresh.first,
        &fresh.key,
        Route::Dropped(Stat::DropDenied),
    );
    assert_eq!(lb.policy(LLM.id).denied, 3, "{what}: counted");
}

#[test]
fn the_canary_takes_its_share_of_100k_flows_stably_per_flow() {
    const FLOWS: u32 = 100_000;
    let mut lb = policy_lb(ROOMY);
    let tables = lb.backend_tables();
    for (round, percent) in [5u32, 10, 50].into_iter().enumerate() {
        let share = CANARY_SHARE_ALL * percent / 100;
        lb.edit_table(LLM.id, Some(&LLM), |v| {
            v.flags |= VIP_F_CANARY;
            v.canary_id = CHAT_V2.id;
            v.canary_share = share;
        });
        let counted_before = lb.policy(LLM.id).canary_new_flows;
        let canary_before = lb.traffic("VIP_STATS", CHAT_V2.id).new_flows;

        let mut to_canary = 0u32;
        let mut first_backends = Vec::new();
        for i in 0..FLOWS {
            let src = ip4([100, 64 + round as u8, (i >> 8) as u8, i as u8]);
            let flow = client(src, 1024 + (i >> 16) as u16, &LLM, 8000);
            let out = lb.run(&flow.first);
            assert_eq!(out.action, XDP_TX, "flow {i} forwarded");
            let backend = lb.backend_at(outer_dst(&out.frame, 14));
            let canary = tables[&backend] == CHAT_V2.id;
            let predicted = split_bits(hash_of(&flow.key)) < share;
            assert_eq!(canary, predicted, "flow {i}: canary as split_bits says");
            if !canary {
                assert_eq!(tables[&backend], LLM.id, "flow {i}: else the default pool");
            }
            to_canary += u32::from(canary);
            if i < 1000 {
                first_backends.push((flow, backend));
            }
        }
        let measured = f64::from(to_canary) * 100.0 / f64::from(FLOWS);
        eprintln!("canary at {percent}%: {to_canary} of {FLOWS} new flows ({measured:.2}%)");
        assert!(
            (measured - f64::from(percent)).abs() < 1.0,
            "canary share {measured:.2}% within 1 point of {percent}%"
        );
        let counted = lb.policy(LLM.id).canary_new_flows - counted_before;
        assert_eq!(
            counted,
            u64::from(to_canary),
            "POLICY_STATS canary_new_flows"
        );
        let arrived = lb.traffic("VIP_STATS", CHAT_V2.id).new_flows - canary_before;
        assert_eq!(
            arrived,
            u64::from(to_canary),
            "new flows on the canary table"
        );

        // The same flow again (a SYN on the same tuple): the same backend.
        for (flow, backend) in &first_backends {
            let out = lb.run(&flow.first);
            assert_eq!(
                lb.backend_at(outer_dst(&out.frame, 14)),
                *backend,
                "same flow twice"
            );
        }
        // Tracked flows keep their backend whatever the share becomes.
        for new_share in [0, CANARY_SHARE_ALL] {
            lb.edit_table(LLM.id, Some(&LLM), |v| v.canary_share = new_share);
            for (flow, backend) in &first_backends {
                let out = lb.run(&flow.later);
                let now = lb.backend_at(outer_dst(&out.frame, 14));
                assert_eq!(now, *backend, "tracked flow kept at share {new_share}");
            }
        }
    }
}

#[test]
fn an_empty_pool_falls_back_to_its_fallback_pool() {
    let mut lb = policy_lb(65_536);
    let no_fallback = client(ip4([198, 51, 100, 1]), 40_000, &LLM, 8000);
    lb.empty_table(&LLM, Some(&LLM));
    let what = "an empty pool without a fallback";
    let dropped = Route::Dropped(Stat::DropNoBackend);
    assert_route(&lb, what, &no_fallback.first, &no_fallback.key, dropped);

    lb.edit_table(LLM.id, Some(&LLM), |v| {
        v.flags |= VIP_F_FALLBACK;
        v.fallback_id = CHAT_US.id;
    });
    for i in 0..100u16 {
        let flow = client(ip4([198, 51, 100, 2]), 40_001 + i, &LLM, 8000);
        let what = "an empty pool's new flow";
        assert_route(&lb, what, &flow.first, &flow.key, Route::Table(CHAT_US.id));
    }
    let counters = lb.policy(LLM.id);
    assert_eq!(
        counters.fallback_new_flows, 100,
        "fallbacks counted on chat-eu"
    );
    assert_eq!(
        lb.traffic("VIP_STATS", CHAT_US.id).new_flows,
        100,
        "arrived on chat-us"
    );
}

#[test]
fn a_pool_whose_backends_are_down_falls_back_and_its_flows_stay_there() {
    let mut lb = policy_lb(65_536);
    lb.edit_table(LLM.id, Some(&LLM), |v| {
        v.flags |= VIP_F_FALLBACK;
        v.fallback_id = CHAT_US.id;
    });
    let ids: Vec<u32> = (0..LLM.backends)
        .map(|i| xlb_harness::backend_of(&LLM, i).0)
        .collect();
    for &id in &ids {
        lb.set_backend_flags(id, 0);
    }
    let flow = client(ip4([198, 51, 100, 3]), 41_000, &LLM, 8000);
    let what = "a new flow while chat-eu is down";
    let backend = assert_route(&lb, what, &flow.first, &flow.key, Route::Table(CHAT_US.id));
    assert_eq!(lb.policy(LLM.id).fallback_new_flows, 1, "{what}: counted");

    // chat-eu is back: the flow stays on chat-us, new flows go home.
    for &id in &ids {
        lb.set_backend_flags(id, lb_common::BACKEND_F_UP | lb_common::BACKEND_F_IN_TABLE);
    }
    let out = lb.run(&flow.later);
    assert_eq!(
        lb.backend_at(outer_dst(&out.frame, 14)),
        backend,
        "tracked flow stays"
    );
    let home = client(ip4([198, 51, 100, 3]), 41_001, &LLM, 8000);
    assert_route(
        &lb,
        "a new flow once chat-eu is up",
        &home.first,
        &home.key,
        Route::Table(LLM.id),
    );
    assert_eq!(lb.policy(LLM.id).fallback_new_flows, 1, "no more fallbacks");
}

#[test]
fn a_tracked_flow_is_resteered_inside_its_own_pool() {
    let mut lb = policy_lb(65_536);
    let flow = client(ip4([10, 1, 9, 9]), 42_000, &LLM, 8000);
    let first = assert_route(
        &lb,
        "chat-us client",
        &flow.first,
        &flow.key,
        Route::Table(CHAT_US.id),
    );
    // The backend goes down; xlbd gives its slots to the pool's other one.
    let other = xlb_world::other_backend(&CHAT_US, first);
    lb.set_backend_flags(first, 0);
    lb.swap_pool_table(&CHAT_US, None, vec![other; xlb_world::TABLE_SIZE_USIZE]);
    let out = lb.run(&flow.later);
    assert_eq!(out.action, XDP_TX, "re-steered flow forwarded");
    let now = lb.backend_at(outer_dst(&out.frame, 14));
    assert_eq!(
        now, other,
        "moved to chat-us's other backend, not to chat-eu"
    );
    let entry = lb.flow(&flow.key).expect("still tracked");
    assert_eq!(
        (entry.backend_id, entry.vip_id),
        (other, CHAT_US.id),
        "FLOWS rewritten"
    );
}

#[test]
fn a_flow_does_not_follow_a_reused_table_id_to_another_vip() {
    let mut lb = policy_lb(65_536);
    let flow = client(ip4([10, 1, 9, 9]), 43_000, &LLM, 8000);
    assert_route(
        &lb,
        "chat-us client",
        &flow.first,
        &flow.key,
        Route::Table(CHAT_US.id),
    );
    // xlbd frees chat-us (and its rule) and gives its id to the IPv6 VIP.
    lb.remove_source_rule(LLM.id, ip4([10, 1, 0, 0]), 16);
    lb.edit_table(CHAT_US.id, None, |v| v.owner_id = LLM6.id);
    let what = "the flow's next packet";
    let want = lb.maglev_backend(
        CHAT_ANY.id,
        &flow.key,
        lb_common::hash::HashInput::FiveTuple,
    );
    let out = lb.run(&flow.later);
    assert_eq!(
        lb.backend_at(outer_dst(&out.frame, 14)),
        want,
        "{what}: scheduled again"
    );
    assert_eq!(
        lb.flow(&flow.key).expect("tracked").vip_id,
        CHAT_ANY.id,
        "{what}: table"
    );
}

#[test]
fn a_tenant_gets_exactly_its_burst_and_other_classes_are_unaffected() {
    const BURST: u32 = 20;
    pin_to_one_cpu();
    let mut lb = policy_lb(65_536);
    // One new flow a second: nothing refills during the test.
    lb.set_tenant_limit(FREE, 1, BURST);
    lb.set_tenant_limit(PAID, 1, BURST);
    lb.add_source_rule(LLM.id, ip4([172, 16, 0, 0]), 16, class_rule(FREE));
    lb.add_source_rule(LLM.id, ip4([172, 17, 0, 0]), 16, class_rule(PAID));

    let free: Vec<Client> = (0..50u16)
        .map(|i| client(ip4([172, 16, 1, i as u8]), 44_000, &LLM, 8000))
        .collect();
    let admitted: Vec<&Client> = free
        .iter()
        .filter(|flow| lb.run(&flow.first).action == XDP_TX)
        .collect();
    assert_eq!(
        admitted.len() as u32,
        BURST,
        "exactly the burst admitted at once"
    );
    assert_eq!(
        lb.stat(Stat::DropTenantLimit),
        u64::from(50 - BURST),
        "the rest dropped"
    );
    assert_eq!(
        lb.policy(LLM.id).rate_limited,
        u64::from(50 - BURST),
        "and counted"
    );
    for (i, flow) in free.iter().enumerate() {
        assert_eq!(
            lb.flow(&flow.key).is_some(),
            i < BURST as usize,
            "flow {i} tracked"
        );
    }

    // The spent budget does not touch admitted connections, nor TCP
    // packets of connections this node has not seen.
    for flow in &admitted {
        assert_eq!(lb.run(&flow.later).action, XDP_TX, "admitted flow's ACK");
    }
    let unseen = client(ip4([172, 16, 9, 9]), 44_001, &LLM, 8000);
    assert_route(
        &lb,
        "an ACK without a flow",
        &unseen.later,
        &unseen.key,
        Route::Table(LLM.id),
    );

    // Another class and classless clients are unaffected.
    for i in 0..BURST as u16 {
        let paid = client(ip4([172, 17, 1, i as u8]), 44_002, &LLM, 8000);
        assert_route(
            &lb,
            "a paid SYN",
            &paid.first,
            &paid.key,
            Route::Table(LLM.id),
        );
        let anyone = client(ip4([198, 51, 100, i as u8]), 44_003, &LLM, 8000);
        assert_route(
            &lb,
            "a classless SYN",
            &anyone.first,
            &anyone.key,
            Route::Table(LLM.id),
        );
    }
    assert_eq!(
        lb.policy(LLM.id).rate_limited,
        u64::from(50 - BURST),
        "none limited"
    );
}

#[test]
fn a_tenant_limit_counts_udp_datagrams_that_start_a_flow() {
    pin_to_one_cpu();
    let mut lb = policy_lb(65_536);
    lb.set_tenant_limit(FREE, 1, 3);
    lb.add_source_rule(LLM_UDP.id, ip4([172, 16, 0, 0]), 16, class_rule(FREE));
    let flows: Vec<Client> = (0..5u16)
        .map(|i| client(ip4([172, 16, 2, 1]), 45_000 + i, &LLM_UDP, 9000))
        .collect();
    let sent: Vec<u32> = flows.iter().map(|f| lb.run(&f.first).action).collect();
    assert_eq!(
        sent,
        [XDP_TX, XDP_TX, XDP_TX, 1, 1],
        "three flows start, two dropped"
    );
    for flow in &flows[..3] {
        assert_eq!(
            lb.run(&flow.later).action,
            XDP_TX,
            "a started flow's next datagram"
        );
    }
    assert_eq!(lb.policy(LLM_UDP.id).rate_limited, 2, "counted");
}

#[test]
fn verifier_budget_keeps_room_with_the_policy() {
    let lb = policy_lb(65_536);
    let info = lb.prog().info().expect("program info");
    let count = info
        .verified_instruction_count()
        .expect("kernel reports the count");
    eprintln!("xlb: {count} verified instructions (limit 1 000 000)");
    assert!(
        count < 500_000,
        "verifier work {count} keeps half the limit free"
    );
}

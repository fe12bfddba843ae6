//! The testbed network without any XDP: reachability, unique names and
//! teardown. Needs root; never skips.

use std::path::PathBuf;

use xlb_testbed::{Testbed, TestbedOptions, netns, plan};

fn options(backends: usize) -> TestbedOptions {
    TestbedOptions {
        backends,
        backend_bin: Some(PathBuf::from(env!("CARGO_BIN_EXE_xlb-backend"))),
        ..Default::default()
    }
}

fn testbed(backends: usize) -> Testbed {
    Testbed::new(options(backends)).expect("testbed builds")
}

fn ping(testbed: &Testbed, target: &str) {
    testbed
        .exec(testbed.client_ns(), &["ping", "-c", "1", "-W", "2", target])
        .unwrap_or_else(|err| panic!("client cannot ping {target}: {err:#}"));
}

fn existing_namespaces(prefix: &str) -> Vec<String> {
    netns::list_netns()
        .into_iter()
        .filter(|ns| ns.starts_with(prefix))
        .collect()
}

#[test]
fn client_reaches_every_backend_directly_over_both_families() {
    let testbed = testbed(2);

    for k in 1..=2 {
        ping(&testbed, &plan::backend_v4(k).to_string());
        ping(&testbed, &plan::backend_v6(k).to_string());
        for port in plan::HTTP_PORTS {
            let v4 = testbed
                .http_get(plan::backend_socket_v4(k, port))
                .expect("http get v4");
            let v6 = testbed
                .http_get(plan::backend_socket_v6(k, port))
                .expect("http get v6");
            assert_eq!(
                v4,
                plan::backend_reply(k),
                "backend b{k} over IPv4 port {port}"
            );
            assert_eq!(
                v6,
                plan::backend_reply(k),
                "backend b{k} over IPv6 port {port}"
            );
        }
        let udp_target = plan::backend_socket_v6(k, plan::UDP_PORT);
        let udp = testbed.udp_query(udp_target).expect("udp query");
        assert_eq!(udp, plan::backend_reply(k), "backend b{k} over UDP");
    }
}

#[test]
fn client_reaches_the_lb_node_by_ping() {
    let testbed = testbed(1);

    ping(&testbed, &plan::LB_V4.to_string());
    ping(&testbed, &plan::LB_V6.to_string());
}

#[test]
fn backend_answers_vip_traffic_straight_to_the_client() {
    let testbed = testbed(2);
    // Stand-in for the LB: the router sends VIP 9 straight to backend 2,
    // which holds every VIP on lo and replies from the VIP via the router.
    let (v4, v6) = (plan::vip_v4(9).to_string(), plan::vip_v6(9).to_string());
    let (b2_v4, b2_v6) = (
        plan::backend_v4(2).to_string(),
        plan::backend_v6(2).to_string(),
    );
    let router = testbed.router_ns();
    testbed
        .exec(router, &["ip", "route", "replace", &v4, "via", &b2_v4])
        .expect("route v4");
    testbed
        .exec(router, &["ip", "route", "replace", &v6, "via", &b2_v6])
        .expect("route v6");

    for target in [plan::vip_socket_v4(9, 80), plan::vip_socket_v6(9, 8080)] {
        let body = testbed.http_get(target).expect("http get to the VIP");
        assert_eq!(body, plan::backend_reply(2), "VIP {target}");
    }
    for target in [
        plan::vip_socket_v4(9, plan::UDP_PORT),
        plan::vip_socket_v6(9, plan::UDP_PORT),
    ] {
        let udp = testbed.udp_query(target).expect("udp to the VIP");
        assert_eq!(udp, plan::backend_reply(2), "VIP {target}");
    }
}

#[test]
fn lb_has_permanent_neighbours_for_the_router_and_every_backend() {
    let testbed = testbed(2);

    let neighbours = testbed.exec(
        testbed.lb_ns(),
        &["ip", "neigh", "show", "nud", "permanent"],
    );
    let neighbours = neighbours.expect("list neighbours");
    let expected = [
        (plan::ROUTER_V4.to_string(), plan::Node::Router),
        (plan::ROUTER_V6.to_string(), plan::Node::Router),
        (plan::backend_v4(2).to_string(), plan::Node::Backend(2)),
        (plan::backend_v6(2).to_string(), plan::Node::Backend(2)),
    ];
    for (ip, node) in expected {
        let mac = plan::mac(node, plan::Port::Eth0);
        let line = format!("{ip} dev eth0 lladdr {mac} PERMANENT");
        assert!(
            neighbours.contains(&line),
            "missing `{line}` in:\n{neighbours}"
        );
    }

    let features = testbed
        .exec(testbed.switch_ns(), &["ethtool", "-k", "lb"])
        .expect("ethtool");
    assert!(
        features.contains("generic-receive-offload: on"),
        "GRO is off on the LB's switch port:\n{features}"
    );
}

#[test]
fn keep_alive_connection_answers_many_requests_on_one_connection() {
    let testbed = testbed(1);

    let mut connection = testbed
        .keep_alive(plan::backend_socket_v4(1, 8080))
        .expect("connect");
    let local = connection.local_addr().expect("local address");
    for _ in 0..5 {
        assert_eq!(
            connection.get().expect("keep-alive get"),
            plan::backend_reply(1)
        );
    }
    assert_eq!(connection.local_addr().expect("local address"), local);
}

#[test]
fn request_batch_counts_answers_per_backend() {
    let testbed = testbed(1);

    let mut progress = Vec::new();
    let stats = testbed
        .run_requests(plan::backend_socket_v4(1, 80), 5, |done, total| {
            progress.push((done, total))
        })
        .expect("run requests");
    assert_eq!(stats.per_backend.get("b1"), Some(&5), "stats: {stats:?}");
    assert_eq!(stats.failures, 0, "stats: {stats:?}");
    assert_eq!(progress.last(), Some(&(5, 5)));
}

#[test]
fn two_testbeds_side_by_side_use_distinct_names_and_both_work() {
    let first = testbed(1);
    let second = testbed(1);

    assert_ne!(first.prefix(), second.prefix());
    assert_ne!(first.pin_path(), second.pin_path());
    let mut all = first.namespaces().all();
    all.extend(second.namespaces().all());
    let count = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), count, "namespace names collide: {all:?}");

    for testbed in [&first, &second] {
        let body = testbed
            .http_get(plan::backend_socket_v4(1, 80))
            .expect("http get");
        assert_eq!(body, plan::backend_reply(1));
    }
}

#[test]
fn teardown_leaves_no_namespace_pin_dir_or_process_behind() {
    let testbed = testbed(2);
    let prefix = testbed.prefix().to_owned();
    let pin_path = testbed.pin_path().to_path_buf();
    let log_dir = testbed.log_dir().to_path_buf();
    std::fs::create_dir(pin_path.join("sub")).expect("make a dir in the pin dir");
    let pids: Vec<u32> = (1..=2)
        .map(|k| {
            testbed
                .backend_process(k)
                .expect("backend")
                .expect("running")
                .pid()
        })
        .collect();
    assert_eq!(existing_namespaces(&prefix).len(), 6);

    drop(testbed);

    assert_eq!(existing_namespaces(&prefix), Vec::<String>::new());
    assert!(
        !pin_path.exists(),
        "pin dir {} left behind",
        pin_path.display()
    );
    assert!(
        !log_dir.exists(),
        "log dir {} left behind",
        log_dir.display()
    );
    for pid in pids {
        assert!(
            !PathBuf::from(format!("/proc/{pid}")).exists(),
            "backend pid {pid} still runs"
        );
    }
}

#[test]
fn teardown_happens_when_a_test_panics() {
    let mut seen = None;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let testbed = testbed(1);
        seen = Some((testbed.prefix().to_owned(), testbed.log_dir().to_path_buf()));
        panic!("a failing test");
    }));

    assert!(outcome.is_err());
    let (prefix, log_dir) = seen.expect("testbed was built");
    assert_eq!(existing_namespaces(&prefix), Vec::<String>::new());
    // Logs are kept on panic for reading; this test does not need them.
    let _ = std::fs::remove_dir_all(log_dir);
}

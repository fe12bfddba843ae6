//! A fleet's data plane end to end: long-lived TCP connections survive
//! losing an LB node and getting it back. The fleet of `fleet_bed` (router
//! with BIRD and ECMP over two LB nodes, each with xlbd and BIRD, config
//! from etcd) gets a client behind the router and three backends, each
//! running `xlb_decap` and a line server on the VIP that answers with its
//! name. The router hashes flows over both nodes (L4 multipath hash).
//! Stopping one node's xlbd withdraws its route: its flows move to the
//! other node, which never saw them and picks by its Maglev table alone;
//! they must reach the same backend. Starting it again moves some back.
//! Needs root; never skips.

mod etcd_server;
mod fleet_bed;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_server::{Etcd, in_netns};
use fleet_bed::{Fleet, LINKS, ROUTER_BIRD, lb_bird, sh, version};

const VIP: &str = "10.100.0.1";
const BACKENDS: usize = 3;
const CONNECTIONS: usize = 32;
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Packets towards a node during a round of pings above which the node is
/// taken to carry flows (BGP keepalives add about one a second).
const MIN_PACKETS: u64 = 5;

fn backend_addr(k: usize) -> String {
    format!("10.1.{k}.2")
}

fn config() -> String {
    let mut text = format!(
        "interfaces: [{{name: eth0}}]\nmetrics_listen: 127.0.0.1:0\n\
         encap: {{source_v4: 10.255.0.1}}\nannounce: {{table: 100}}\nvips:\n  \
         - {{name: web, address: {VIP}, port: 80, protocol: tcp, pool: web}}\n\
         pools:\n  web:\n    backends:\n"
    );
    for k in 1..=BACKENDS {
        text.push_str(&format!("      - address: {}\n", backend_addr(k)));
    }
    text
}

fn ip(ns: &str, args: &[&str]) {
    sh(&[&["ip", "-n", ns][..], args].concat());
}

fn in_ns(ns: &str, args: &[&str]) {
    let net = format!("--net=/run/netns/{ns}");
    sh(&[&["nsenter", net.as_str()][..], args].concat());
}

fn sysctls(ns: &str, settings: &[&str]) {
    for setting in settings {
        in_ns(ns, &["sysctl", "-q", "-w", setting]);
    }
}

/// Adds the client, the backends and what forwarding needs.
fn add_data_plane(fleet: &mut Fleet) {
    let pid = std::process::id();
    let router = fleet.router.clone();
    let client = format!("xlb-fl-cl-{pid}");
    let mut hosts = vec![(client.clone(), "cl".to_owned(), "10.200.0")];
    let nets: Vec<String> = (1..=BACKENDS).map(|k| format!("10.1.{k}")).collect();
    for (k, net) in nets.iter().enumerate() {
        hosts.push((
            format!("xlb-fl-b{}-{pid}", k + 1),
            format!("b{}", k + 1),
            net,
        ));
    }
    for (ns, side, net) in &hosts {
        sh(&["ip", "netns", "add", ns]);
        fleet.extra_namespaces.push(ns.clone());
        let peer = ["peer", "name", "eth0", "netns", ns];
        ip(
            &router,
            &[&["link", "add", side, "type", "veth"][..], &peer].concat(),
        );
        ip(
            &router,
            &["addr", "add", &format!("{net}.1/24"), "dev", side],
        );
        ip(&router, &["link", "set", side, "up"]);
        ip(ns, &["addr", "add", &format!("{net}.2/24"), "dev", "eth0"]);
        ip(ns, &["link", "set", "eth0", "up"]);
        ip(ns, &["link", "set", "lo", "up"]);
        ip(ns, &["route", "add", "default", "via", &format!("{net}.1")]);
        // Checksums in software: a checksum left pending on veth would
        // not survive the LB's XDP_TX (see testbed/src/topology.rs).
        in_ns(ns, &["ethtool", "-K", "eth0", "tx", "off"]);
    }
    for (ns, _, _) in &hosts[1..] {
        ip(ns, &["addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
        let off = [
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.eth0.rp_filter=0",
        ];
        sysctls(ns, &off);
    }
    sysctls(
        &router,
        &[
            "net.ipv4.ip_forward=1",
            "net.ipv4.fib_multipath_hash_policy=1",
            "net.ipv4.conf.all.rp_filter=0",
        ],
    );
    for side in ["r1", "r2"] {
        sysctls(&router, &[&format!("net.ipv4.conf.{side}.rp_filter=0")]);
    }
    for lb in fleet.lbs.clone() {
        // bpf_fib_lookup refuses interfaces that do not forward.
        sysctls(
            &lb,
            &["net.ipv4.ip_forward=1", "net.ipv4.conf.eth0.forwarding=1"],
        );
    }
    for (k, (ns, _, _)) in hosts.iter().enumerate().skip(1) {
        let pin = format!("/sys/fs/bpf/xlb-fl-{pid}-decap-b{k}");
        fleet.extra_pins.push(pin.clone());
        let addr = backend_addr(k);
        let args = [
            "decap",
            "--iface",
            "eth0",
            "--addr",
            &addr,
            "--pin-path",
            &pin,
        ];
        in_ns(ns, &[&[fleet_bed::XLBD][..], &args].concat());
    }
}

/// Attaches `xlb_pass` to the router's ports towards the LB nodes: on
/// this kernel (6.18) a frame an LB sends with XDP_TX into its veth is
/// delivered only if the peer runs an XDP program (testbed/src/lib.rs).
/// Detached when the returned objects are dropped.
fn attach_receivers(router: &str) -> Vec<aya::Ebpf> {
    in_netns(Some(router), || {
        ["r1", "r2"]
            .iter()
            .map(|side| {
                let mut ebpf = aya::Ebpf::load(xlb::objects::XLB_BASELINE).expect("baseline");
                let program: &mut aya::programs::Xdp = ebpf
                    .program_mut("xlb_pass")
                    .expect("xlb_pass")
                    .try_into()
                    .unwrap();
                program.load().expect("loading xlb_pass");
                let mode = aya::programs::XdpMode::Driver;
                program.attach(side, mode).expect("attaching xlb_pass");
                ebpf
            })
            .collect()
    })
}

/// Line servers on the VIP in every backend: each line read is answered
/// with the backend's name. Stop on drop.
struct Servers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Servers {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for k in 1..=BACKENDS {
            let ns = format!("xlb-fl-b{k}-{pid}");
            let listener = in_netns(Some(&ns), || {
                TcpListener::bind(SocketAddr::new(VIP.parse().unwrap(), 80)).expect("bind")
            });
            listener.set_nonblocking(true).unwrap();
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || serve(&listener, k, &stop)));
        }
        Self { stop, threads }
    }
}

fn serve(listener: &TcpListener, k: usize, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                std::thread::spawn(move || answer(stream, k));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn answer(stream: TcpStream, k: usize) {
    let _ = stream.set_nonblocking(false);
    let mut writer = stream.try_clone().expect("cloning a stream");
    for line in BufReader::new(stream).lines() {
        if line.is_err() || writeln!(writer, "b{k}").is_err() {
            return;
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Narrates a step (shown with `--nocapture`, as `cargo xtask demo
/// --fleet` runs this test).
fn say(line: &str) {
    eprintln!("fleet: {line}");
}

/// Sends a line on every connection and returns who answered each.
fn ping_all(streams: &mut [BufReader<TcpStream>], round: &str) -> Vec<String> {
    streams
        .iter_mut()
        .enumerate()
        .map(|(i, stream)| {
            let sent = writeln!(stream.get_mut(), "ping");
            let mut line = String::new();
            let read = sent.and_then(|()| stream.read_line(&mut line));
            match read {
                Ok(n) if n > 0 => line.trim().to_owned(),
                other => panic!("{round}: connection {i} broke: {other:?}"),
            }
        })
        .collect()
}

/// Packets the router sent towards each LB node so far.
fn router_tx_packets(fleet: &Fleet) -> [u64; 2] {
    ["r1", "r2"].map(|side| {
        let out = Command::new("ip")
            .args(["-n", &fleet.router, "-j", "-s", "link", "show", "dev", side])
            .output()
            .expect("ip -s link");
        let links: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j");
        links[0]["stats64"]["tx"]["packets"].as_u64().unwrap_or(0)
    })
}

#[test]
fn long_lived_connections_survive_losing_an_lb_node_and_getting_it_back() {
    let mut fleet = Fleet::new();
    let etcd = Etcd::start_on(Some(&fleet.router), LINKS[0].0);
    let endpoint = etcd.endpoint();
    add_data_plane(&mut fleet);
    let _receivers = attach_receivers(&fleet.router);
    let _servers = Servers::start(std::process::id());
    fleet.push(&endpoint, &config());
    let router = fleet.router.clone();
    fleet.start_bird(&router, ROUTER_BIRD, "router");
    for i in 0..2 {
        let ns = fleet.lbs[i].clone();
        fleet.start_bird(&ns, &lb_bird(i), &format!("lb{i}"));
        fleet.start_xlbd(i, &endpoint);
        fleet.wait_version(i, &version(&config()));
    }
    let both = [LINKS[0].1, LINKS[1].1];
    let took = fleet.wait_paths(VIP, &both, "two nodes announce");
    say(&format!(
        "the router has two paths to {VIP} ({both:?}) after {took:.1?}"
    ));

    let client = format!("xlb-fl-cl-{}", std::process::id());
    let mut streams: Vec<BufReader<TcpStream>> = in_netns(Some(&client), || {
        let target = SocketAddr::new(VIP.parse().unwrap(), 80);
        (0..CONNECTIONS)
            .map(|i| {
                let stream = TcpStream::connect_timeout(&target, IO_TIMEOUT)
                    .unwrap_or_else(|e| panic!("connection {i} to the VIP failed: {e}"));
                stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                BufReader::new(stream)
            })
            .collect()
    });
    let before = router_tx_packets(&fleet);
    let backends = ping_all(&mut streams, "both nodes");
    let after = router_tx_packets(&fleet);
    let per_backend = backends.iter().fold(BTreeMap::new(), |mut counts, b| {
        *counts.entry(b.clone()).or_insert(0) += 1;
        counts
    });
    let sent = [after[0] - before[0], after[1] - before[1]];
    say(&format!(
        "{CONNECTIONS} connections, one ping each: backends {per_backend:?}, \
         packets to node 1 / node 2: {sent:?}"
    ));
    assert!(
        per_backend.len() > 1,
        "every connection on one backend: {per_backend:?}"
    );
    assert!(
        after[0] > before[0] + MIN_PACKETS && after[1] > before[1] + MIN_PACKETS,
        "the router did not use both LB nodes: {before:?} -> {after:?}"
    );

    fleet.stop_xlbd(0);
    let took = fleet.wait_paths(VIP, &[LINKS[1].1], "node 1 stopped");
    say(&format!(
        "node 1's xlbd stopped: the router withdrew its path in {took:.1?}"
    ));
    for round in 0..3 {
        let now = ping_all(&mut streams, &format!("node 1 down, round {round}"));
        assert_eq!(
            now, backends,
            "a connection changed backend with node 1 down"
        );
    }

    say(&format!(
        "3 rounds of {CONNECTIONS} pings on node 2 alone: same backends, none broke"
    ));

    fleet.start_xlbd(0, &endpoint);
    let took = fleet.wait_paths(VIP, &both, "node 1 back");
    say(&format!(
        "node 1's xlbd started again: its path is back after {took:.1?}"
    ));
    let before = router_tx_packets(&fleet);
    for round in 0..3 {
        let now = ping_all(&mut streams, &format!("node 1 back, round {round}"));
        assert_eq!(
            now, backends,
            "a connection changed backend with node 1 back"
        );
    }
    let after = router_tx_packets(&fleet);
    assert!(
        after[0] > before[0] + MIN_PACKETS,
        "no flow went back to node 1: {before:?} -> {after:?}"
    );
    let sent = [after[0] - before[0], after[1] - before[1]];
    say(&format!(
        "3 rounds over both nodes again ({sent:?} packets): same backends, none broke"
    ));
    drop(streams);
    let _ = fs::remove_dir_all(&fleet.dir);
}

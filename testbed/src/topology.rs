//! Building the network: namespaces, veths, the bridge, addresses, routes,
//! neighbours and sysctls, following `plan`.
//!
//! Order matters for IPv6: every link is up (so veths have carrier) before
//! any address or route is added.
//!
//! Two things stand in for hardware the LB would have on a real wire:
//! an XDP receiver on the LB's switch port (see `receiver`), and the
//! router completing TCP and UDP checksums as a NIC does (see
//! `fill_checksums`).

use std::path::Path;

use anyhow::{Context, Result};

use crate::netns::{self, ip_batch};
use crate::plan::{self, Node, Port, mac};
use crate::receiver;

/// The namespace names of one testbed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespaces {
    /// `P-sw`: the bridge `br0` and its ports `rt`, `lb`, `b1`..`bN`.
    pub switch: String,
    /// `P-cl`: the client.
    pub client: String,
    /// `P-rt`: the router.
    pub router: String,
    /// `P-lb`: the load balancer node.
    pub lb: String,
    /// `P-b1`..`P-bN`: the backends, index 0 is backend 1.
    pub backends: Vec<String>,
}

impl Namespaces {
    /// The names for prefix `prefix` and `backends` backends.
    pub fn new(prefix: &str, backends: usize) -> Self {
        let name = |node: Node| format!("{prefix}-{}", node.suffix());
        Namespaces {
            switch: name(Node::Switch),
            client: name(Node::Client),
            router: name(Node::Router),
            lb: name(Node::Lb),
            backends: (1..=backends).map(|k| name(Node::Backend(k))).collect(),
        }
    }

    /// The namespace of `node` (`None` for a backend number out of range).
    pub fn of(&self, node: Node) -> Option<&str> {
        match node {
            Node::Switch => Some(&self.switch),
            Node::Client => Some(&self.client),
            Node::Router => Some(&self.router),
            Node::Lb => Some(&self.lb),
            Node::Backend(k) => k
                .checked_sub(1)
                .and_then(|i| self.backends.get(i))
                .map(String::as_str),
        }
    }

    /// Every namespace, switch first.
    pub fn all(&self) -> Vec<String> {
        let fixed = [&self.switch, &self.client, &self.router, &self.lb];
        fixed.into_iter().chain(&self.backends).cloned().collect()
    }

    /// The hosts on the bridge with their namespaces: router, LB, backends.
    fn bridged(&self) -> Vec<(Node, &str)> {
        let mut hosts = vec![
            (Node::Router, self.router.as_str()),
            (Node::Lb, self.lb.as_str()),
        ];
        for (i, ns) in self.backends.iter().enumerate() {
            hosts.push((Node::Backend(i + 1), ns.as_str()));
        }
        hosts
    }
}

/// Builds the whole network in namespaces that do not exist yet; pins
/// the LB port's XDP receiver under `pin_dir`.
///
/// # Errors
/// When any step fails; the caller tears down what was made.
pub fn build(ns: &Namespaces, pin_dir: &Path) -> Result<()> {
    for name in ns.all() {
        netns::exec_ip(&["netns", "add", &name])?;
    }
    set_sysctls(ns)?;
    create_veths(ns)?;
    build_switch(ns, pin_dir)?;
    bring_links_up(ns)?;
    configure_client(ns)?;
    configure_router(ns)?;
    configure_lb(ns)?;
    for k in 1..=ns.backends.len() {
        configure_backend(ns, k)?;
    }
    Ok(())
}

/// Sysctls, set on `all` and `default` before links exist so every new
/// interface inherits them.
fn set_sysctls(ns: &Namespaces) -> Result<()> {
    let both = |family: &str, key: &str| -> Vec<String> {
        ["all", "default", "lo"]
            .iter()
            .map(|dev| format!("net/{family}/conf/{dev}/{key}"))
            .collect()
    };
    let set = |keys: Vec<String>, value: &'static str| keys.into_iter().map(move |k| (k, value));

    // rp_filter off everywhere: replies leave backends with a VIP source
    // that the router's reverse path would not expect.
    let mut common: Vec<(String, &str)> = set(both("ipv4", "rp_filter"), "0").collect();
    // No duplicate address detection, also for link-local addresses: while
    // those are tentative, neighbour discovery stalls for about 2 s.
    common.extend(set(both("ipv6", "accept_dad"), "0"));

    // The switch only bridges; no IPv6 chatter from its ports.
    let mut switch = common.clone();
    switch.extend(set(both("ipv6", "disable_ipv6"), "1"));
    netns::write_sysctls(&ns.switch, &switch)?;

    netns::write_sysctls(&ns.client, &common)?;

    // Forwarding on the LB: xlb finds a backend's MAC with bpf_fib_lookup,
    // which answers BPF_FIB_LKUP_RET_FWD_DISABLED when the ingress
    // interface does not forward (net/core/filter.c), and xlb then drops
    // the packet as DropNoRoute. A production LB node needs the same.
    let mut lb = common.clone();
    lb.push(("net/ipv4/ip_forward".to_owned(), "1"));
    lb.extend(set(both("ipv6", "forwarding"), "1"));
    netns::write_sysctls(&ns.lb, &lb)?;

    let mut router = common.clone();
    router.push(("net/ipv4/ip_forward".to_owned(), "1"));
    router.extend(set(both("ipv6", "forwarding"), "1"));
    netns::write_sysctls(&ns.router, &router)?;

    // accept_local: decapsulated packets may carry a source the backend
    // also holds (a VIP on lo) without being dropped as martians.
    let mut backend = common;
    backend.extend(set(both("ipv4", "accept_local"), "1"));
    for name in &ns.backends {
        netns::write_sysctls(name, &backend)?;
    }
    Ok(())
}

/// One veth per link, each end created straight inside its namespace.
fn create_veths(ns: &Namespaces) -> Result<()> {
    let veth = |a_ns: &str, a: &str, a_mac: String, b_ns: &str, b: &str, b_mac: String| {
        format!(
            "link add {a} netns {a_ns} address {a_mac} type veth \
             peer name {b} netns {b_ns} address {b_mac}"
        )
    };
    let mut lines = vec![veth(
        &ns.client,
        "eth0",
        mac(Node::Client, Port::Eth0),
        &ns.router,
        "eth-cl",
        mac(Node::Router, Port::RouterClientSide),
    )];
    for (node, host_ns) in ns.bridged() {
        let port = node.suffix();
        let (host_mac, port_mac) = (mac(node, Port::Eth0), mac(node, Port::SwitchSide));
        lines.push(veth(host_ns, "eth0", host_mac, &ns.switch, &port, port_mac));
    }
    ip_batch(None, &lines)
}

/// The bridge and its ports, plus the XDP receiver on the LB's port.
fn build_switch(ns: &Namespaces, pin_dir: &Path) -> Result<()> {
    // No multicast snooping: with no MLD querier it could stop flooding the
    // solicited-node multicast that IPv6 neighbour discovery relies on.
    let bridge_mac = mac(Node::Switch, Port::Bridge);
    let mut lines = vec![
        format!("link add br0 address {bridge_mac} type bridge mcast_snooping 0"),
        "link set lo up".to_owned(),
        "link set br0 up".to_owned(),
    ];
    for (node, _) in ns.bridged() {
        let port = node.suffix();
        lines.push(format!("link set {port} master br0"));
        lines.push(format!("link set {port} up"));
    }
    ip_batch(Some(&ns.switch), &lines)?;

    // XDP_TX on the LB's eth0 hands frames to its veth peer, the `lb` port.
    // veth_xdp_xmit drops them unless that peer's NAPI ring is on. GRO
    // turns it on for a plain peer but, on 6.18, not for a bridge port
    // (measured: xdp_tx counted, nothing delivered), so an XDP program on
    // the port is what makes delivery work; GRO stays on as on a host.
    let port = "lb";
    netns::exec(&ns.switch, &["ethtool", "-K", port, "gro", "on"])
        .context("enable GRO on the switch port of the LB")?;
    receiver::attach_receiver(&ns.switch, port, pin_dir)
        .context("attach the XDP receiver the LB's XDP_TX needs")?;
    tracing::info!(
        ns = %ns.switch,
        port,
        "XDP receiver on so XDP_TX frames from the LB are delivered"
    );
    Ok(())
}

fn bring_links_up(ns: &Namespaces) -> Result<()> {
    let up = |links: &[&str]| -> Vec<String> {
        links
            .iter()
            .map(|link| format!("link set {link} up"))
            .collect()
    };
    ip_batch(Some(&ns.client), &up(&["lo", "eth0"]))?;
    ip_batch(Some(&ns.router), &up(&["lo", "eth-cl", "eth0"]))?;
    ip_batch(Some(&ns.lb), &up(&["lo", "eth0"]))?;
    for name in &ns.backends {
        ip_batch(Some(name), &up(&["lo", "eth0"]))?;
    }
    Ok(())
}

/// Address lines for `dev` (IPv6 without duplicate address detection).
fn addresses(dev: &str, v4: impl std::fmt::Display, v6: impl std::fmt::Display) -> Vec<String> {
    vec![
        format!("addr add {v4}/24 dev {dev}"),
        format!("addr add {v6}/64 dev {dev} nodad"),
    ]
}

/// Default routes of a host on the bridge: via the router.
fn default_routes_via_router() -> Vec<String> {
    vec![
        format!("route add default via {}", plan::ROUTER_V4),
        format!("route add ::/0 via {}", plan::ROUTER_V6),
    ]
}

fn configure_client(ns: &Namespaces) -> Result<()> {
    let mut lines = addresses("eth0", plan::CLIENT_V4, plan::CLIENT_V6);
    // The other client prefixes, for source-prefix policy tests; replies
    // to them come back over the router's connected routes.
    for i in 1..plan::CLIENT_PREFIXES {
        lines.push(format!("addr add {}/24 dev eth0", plan::client_v4_in(i)));
    }
    lines.push(format!(
        "route add default via {}",
        plan::ROUTER_CLIENT_SIDE_V4
    ));
    lines.push(format!(
        "route add ::/0 via {}",
        plan::ROUTER_CLIENT_SIDE_V6
    ));
    ip_batch(Some(&ns.client), &lines)
}

fn configure_router(ns: &Namespaces) -> Result<()> {
    let mut lines = addresses(
        "eth-cl",
        plan::ROUTER_CLIENT_SIDE_V4,
        plan::ROUTER_CLIENT_SIDE_V6,
    );
    for i in 1..plan::CLIENT_PREFIXES {
        let address = plan::router_client_side_v4_in(i);
        lines.push(format!("addr add {address}/24 dev eth-cl"));
    }
    lines.extend(addresses("eth0", plan::ROUTER_V4, plan::ROUTER_V6));
    lines.push(format!(
        "route add {} via {}",
        plan::VIP_NET_V4,
        plan::LB_V4
    ));
    lines.push(format!(
        "route add {} via {}",
        plan::VIP_NET_V6,
        plan::LB_V6
    ));
    ip_batch(Some(&ns.router), &lines)?;
    fill_checksums(&ns.router)
}

/// Makes the router complete TCP and UDP checksums of what it forwards,
/// as a NIC completes them on a physical wire.
///
/// The client's stack leaves CHECKSUM_PARTIAL checksums on veth (offload
/// on, as the kernel sets it, and left so). Forwarded through the router
/// they reach the LB's XDP program still partial, and a frame sent with
/// XDP_TX loses the skb's pending-checksum state, so the backend would
/// drop the decapsulated segment (TcpInCsumErrors). The CHECKSUM target
/// fills them in on the way out.
fn fill_checksums(router: &str) -> Result<()> {
    for tool in ["iptables", "ip6tables"] {
        for proto in ["tcp", "udp"] {
            let args = [
                tool,
                "-t",
                "mangle",
                "-A",
                "POSTROUTING",
                "-p",
                proto,
                "-j",
                "CHECKSUM",
                "--checksum-fill",
            ];
            netns::exec(router, &args).with_context(|| {
                format!(
                    "make the router fill {proto} checksums with {tool} \
                     (`cargo xtask setup` installs iptables)"
                )
            })?;
        }
    }
    Ok(())
}

/// The LB: addresses, routes, and permanent neighbours for the router and
/// every backend so the XDP program's bpf_fib_lookup finds their MACs.
fn configure_lb(ns: &Namespaces) -> Result<()> {
    let mut lines = addresses("eth0", plan::LB_V4, plan::LB_V6);
    lines.extend(default_routes_via_router());

    let neigh = |ip: String, node: Node| {
        format!(
            "neigh replace {ip} lladdr {} dev eth0 nud permanent",
            mac(node, Port::Eth0)
        )
    };
    lines.push(neigh(plan::ROUTER_V4.to_string(), Node::Router));
    lines.push(neigh(plan::ROUTER_V6.to_string(), Node::Router));
    for k in 1..=ns.backends.len() {
        lines.push(neigh(plan::backend_v4(k).to_string(), Node::Backend(k)));
        lines.push(neigh(plan::backend_v6(k).to_string(), Node::Backend(k)));
    }
    ip_batch(Some(&ns.lb), &lines)
}

/// Backend `k`: its own addresses, default routes, and every VIP on `lo`
/// so it accepts decapsulated VIP traffic and answers from the VIP.
fn configure_backend(ns: &Namespaces, k: usize) -> Result<()> {
    let Some(name) = ns.of(Node::Backend(k)) else {
        anyhow::bail!("backend {k} has no namespace");
    };
    let mut lines = addresses("eth0", plan::backend_v4(k), plan::backend_v6(k));
    lines.extend(default_routes_via_router());
    for i in 1..=plan::VIP_COUNT {
        lines.push(format!("addr add {}/32 dev lo", plan::vip_v4(i)));
        lines.push(format!("addr add {}/128 dev lo nodad", plan::vip_v6(i)));
    }
    ip_batch(Some(name), &lines)
}

//! The fixed address plan of the testbed: IP addresses, VIPs, ports and MACs.
//!
//! Every testbed uses the same plan; testbeds stay apart because each lives
//! in its own namespaces. Backends are numbered from 1.
//!
//! ```text
//!  client 10.200.0.2 ── 10.200.0.1 router 10.0.0.1 ── br0 ┬─ lb 10.0.0.2
//!         fd00:200::2    fd00:200::1       fd00::1         ├─ b1 10.0.0.11
//!                                                          └─ bK 10.0.0.(10+K)
//! ```
//!
//! The client also holds 10.201.0.2 and 10.202.0.2 on its `eth0` (the
//! router 10.201.0.1 and 10.202.0.1), so tests of source-prefix policy can
//! send from three client prefixes (`client_v4_in(prefix)`).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// The client's address (P-cl eth0).
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);
/// The client's IPv6 address (P-cl eth0).
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, 2);
/// The router's address on the client side (P-rt eth-cl).
pub const ROUTER_CLIENT_SIDE_V4: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
/// The router's IPv6 address on the client side (P-rt eth-cl).
pub const ROUTER_CLIENT_SIDE_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, 1);
/// How many IPv4 client prefixes the client has: 10.(200+i).0.0/24 for i
/// in 0..CLIENT_PREFIXES, its address .2 there, the router's .1.
pub const CLIENT_PREFIXES: u8 = 3;

/// The client's address in client prefix `i` (0 is `CLIENT_V4`):
/// 10.(200+i).0.2.
pub fn client_v4_in(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 200 + i.min(CLIENT_PREFIXES - 1), 0, 2)
}

/// The router's address in client prefix `i`: 10.(200+i).0.1.
pub fn router_client_side_v4_in(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 200 + i.min(CLIENT_PREFIXES - 1), 0, 1)
}

/// The router's address on the bridge (P-rt eth0): the gateway of the LB and
/// the backends.
pub const ROUTER_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The router's IPv6 address on the bridge (P-rt eth0).
pub const ROUTER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
/// The LB node's address (P-lb eth0); the router sends VIP traffic here.
pub const LB_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The LB node's IPv6 address (P-lb eth0).
pub const LB_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);

/// The IPv4 VIP range, routed by the router to the LB.
pub const VIP_NET_V4: &str = "10.100.0.0/24";
/// The IPv6 VIP range, routed by the router to the LB.
pub const VIP_NET_V6: &str = "fd00:100::/64";
/// How many VIPs of each family every backend holds on `lo` (index 1..=9).
pub const VIP_COUNT: u8 = 9;

/// The TCP ports every backend serves HTTP on.
pub const HTTP_PORTS: [u16; 2] = [80, 8080];
/// The UDP port every backend answers datagrams on.
pub const UDP_PORT: u16 = 5353;

/// The largest number of backends a testbed can have (addresses stay in
/// 10.0.0.11..=10.0.0.74 and MACs in one byte).
pub const MAX_BACKENDS: usize = 64;

/// Backend `k`'s address on the bridge: 10.0.0.(10+k).
pub fn backend_v4(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 10 + host_byte(k))
}

/// Backend `k`'s IPv6 address on the bridge: fd00::(10+k) (hex digits of the
/// decimal number, so backend 1 is fd00::11).
pub fn backend_v6(k: usize) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, decimal_as_hex(10 + k))
}

/// VIP number `i` (1..=9): 10.100.0.i.
pub fn vip_v4(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 100, 0, i)
}

/// IPv6 VIP number `i` (1..=9): fd00:100::i.
pub fn vip_v6(i: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x100, 0, 0, 0, 0, 0, u16::from(i))
}

/// VIP number `i` at `port`, as a target for client requests.
pub fn vip_socket_v4(i: u8, port: u16) -> SocketAddr {
    SocketAddr::new(vip_v4(i).into(), port)
}

/// IPv6 VIP number `i` at `port`, as a target for client requests.
pub fn vip_socket_v6(i: u8, port: u16) -> SocketAddr {
    SocketAddr::new(vip_v6(i).into(), port)
}

/// Backend `k`'s own address at `port` (reachable without the LB).
pub fn backend_socket_v4(k: usize, port: u16) -> SocketAddr {
    SocketAddr::new(backend_v4(k).into(), port)
}

/// Backend `k`'s own IPv6 address at `port` (reachable without the LB).
pub fn backend_socket_v6(k: usize, port: u16) -> SocketAddr {
    SocketAddr::new(backend_v6(k).into(), port)
}

/// The name of backend `k` as it answers requests: "b1", "b2", ...
pub fn backend_name(k: usize) -> String {
    format!("b{k}")
}

/// The body backend `k` answers every request with: "backend bK\n".
pub fn backend_reply(k: usize) -> String {
    format!("backend {}\n", backend_name(k))
}

/// One node of the topology, as used for namespace names and MACs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// The switch namespace holding the bridge `br0`.
    Switch,
    /// The client.
    Client,
    /// The router between the client and the bridge.
    Router,
    /// The load balancer node.
    Lb,
    /// Backend `k` (from 1).
    Backend(usize),
}

impl Node {
    /// The namespace suffix of this node: "sw", "cl", "rt", "lb", "bK".
    pub fn suffix(self) -> String {
        match self {
            Node::Switch => "sw".to_owned(),
            Node::Client => "cl".to_owned(),
            Node::Router => "rt".to_owned(),
            Node::Lb => "lb".to_owned(),
            Node::Backend(k) => backend_name(k),
        }
    }

    /// The byte that identifies this node in its MACs.
    fn mac_byte(self) -> u8 {
        match self {
            Node::Switch => 0x00,
            Node::Client => 0x01,
            Node::Router => 0x02,
            Node::Lb => 0x03,
            Node::Backend(k) => 0x10 + host_byte(k),
        }
    }
}

/// Which interface of a node a MAC belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// The node's `eth0` (for the router: its bridge side).
    Eth0,
    /// The router's `eth-cl`, facing the client.
    RouterClientSide,
    /// The switch-side end of the node's `eth0` veth (a bridge port).
    SwitchSide,
    /// The bridge device `br0` itself (with `Node::Switch`).
    Bridge,
}

/// The deterministic, locally administered MAC of one interface:
/// 02:00:00:00:NODE:PORT, with NODE 00 switch, 01 client, 02 router, 03 LB,
/// 10+K backend K, and PORT 01 eth0, 02 eth-cl, fe switch side, ff br0.
pub fn mac(node: Node, port: Port) -> String {
    let port_byte = match port {
        Port::Eth0 => 0x01,
        Port::RouterClientSide => 0x02,
        Port::SwitchSide => 0xfe,
        Port::Bridge => 0xff,
    };
    format!("02:00:00:00:{:02x}:{port_byte:02x}", node.mac_byte())
}

/// `k` as one address byte; callers keep `k` within `MAX_BACKENDS`.
fn host_byte(k: usize) -> u8 {
    u8::try_from(k.min(MAX_BACKENDS)).unwrap_or(u8::MAX)
}

/// Reads the decimal digits of `n` as hex, so 11 becomes 0x11 and backend
/// addresses read the same in both families.
fn decimal_as_hex(n: usize) -> u16 {
    u16::from_str_radix(&n.min(9999).to_string(), 16).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_addresses_follow_the_plan() {
        assert_eq!(backend_v4(1), Ipv4Addr::new(10, 0, 0, 11));
        assert_eq!(backend_v6(1).to_string(), "fd00::11");
        assert_eq!(backend_v6(12).to_string(), "fd00::22");
        assert_eq!(vip_v6(3).to_string(), "fd00:100::3");
    }

    #[test]
    fn macs_are_distinct_per_node_and_port() {
        assert_eq!(mac(Node::Lb, Port::Eth0), "02:00:00:00:03:01");
        assert_eq!(mac(Node::Backend(2), Port::SwitchSide), "02:00:00:00:12:fe");
        assert_ne!(
            mac(Node::Router, Port::Eth0),
            mac(Node::Router, Port::RouterClientSide)
        );
    }
}

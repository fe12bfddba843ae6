//! The three rtnetlink requests announcing needs: add a host route to a
//! VIP, delete it, and list the routes xlbd added to a table.
//!
//! The routes are `unicast dev lo`, protocol [`ROUTE_PROTOCOL`], in the
//! announce table. Nothing on the LB node looks that table up unless an
//! `ip rule` says so; it exists for the routing daemon, which exports it.

use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// The `rtm_protocol` of the routes xlbd adds, so that they can be told
/// from anyone else's (`ip route show table N proto 251`). Unassigned in
/// iproute2's `rt_protos`.
pub const ROUTE_PROTOCOL: u8 = 251;

/// Index of `lo`, the device every VIP route points at (always 1).
const LOOPBACK_INDEX: u32 = 1;

/// Adds (or replaces) the host route to `vip` in `table`.
///
/// # Errors
///
/// When the kernel refuses the route or the socket fails.
pub fn add(table: u32, vip: IpAddr) -> std::io::Result<()> {
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    request(RouteNetlinkMessage::NewRoute(message(table, vip)), flags).map(drop)
}

/// Deletes the host route to `vip` from `table`; a route already gone is
/// not an error.
///
/// # Errors
///
/// When the kernel refuses otherwise or the socket fails.
pub fn delete(table: u32, vip: IpAddr) -> std::io::Result<()> {
    let flags = NLM_F_REQUEST | NLM_F_ACK;
    match request(RouteNetlinkMessage::DelRoute(message(table, vip)), flags) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        other => other.map(drop),
    }
}

/// The destinations of the host routes of protocol [`ROUTE_PROTOCOL`] in
/// `table`, both families.
///
/// # Errors
///
/// When the dump fails.
pub fn list(table: u32) -> std::io::Result<Vec<IpAddr>> {
    let mut found = Vec::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut query = RouteMessage::default();
        query.header.address_family = family;
        let flags = NLM_F_REQUEST | NLM_F_DUMP;
        for route in request(RouteNetlinkMessage::GetRoute(query), flags)? {
            let ours = route.header.protocol == RouteProtocol::Other(ROUTE_PROTOCOL)
                || u8::from(route.header.protocol) == ROUTE_PROTOCOL;
            if ours && table_of(&route) == table {
                found.extend(destination(&route));
            }
        }
    }
    Ok(found)
}

fn message(table: u32, vip: IpAddr) -> RouteMessage {
    let mut route = RouteMessage::default();
    route.header = RouteHeader {
        address_family: match vip {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        },
        destination_prefix_length: if vip.is_ipv4() { 32 } else { 128 },
        // Tables above 255 only fit the attribute; the header says so.
        table: u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC),
        protocol: RouteProtocol::Other(ROUTE_PROTOCOL),
        scope: RouteScope::Link,
        kind: RouteType::Unicast,
        ..route.header
    };
    route.attributes = vec![
        RouteAttribute::Destination(RouteAddress::from(vip)),
        RouteAttribute::Oif(LOOPBACK_INDEX),
        RouteAttribute::Table(table),
    ];
    route
}

fn table_of(route: &RouteMessage) -> u32 {
    route
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            RouteAttribute::Table(table) => Some(*table),
            _ => None,
        })
        .unwrap_or(u32::from(route.header.table))
}

fn destination(route: &RouteMessage) -> Option<IpAddr> {
    let full = matches!(route.header.destination_prefix_length, 32 | 128);
    route
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            RouteAttribute::Destination(RouteAddress::Inet(v4)) if full => Some(IpAddr::V4(*v4)),
            RouteAttribute::Destination(RouteAddress::Inet6(v6)) if full => Some(IpAddr::V6(*v6)),
            _ => None,
        })
}

/// Sends one request and collects the routes of the answer, until the
/// ack (or the end of a dump).
fn request(payload: RouteNetlinkMessage, flags: u16) -> std::io::Result<Vec<RouteMessage>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;

    let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(payload));
    packet.header.flags = flags;
    packet.header.sequence_number = 1;
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let mut routes = Vec::new();
    loop {
        let (reply, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < reply.len() {
            let message: NetlinkMessage<RouteNetlinkMessage> =
                NetlinkMessage::deserialize(&reply[offset..]).map_err(std::io::Error::other)?;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) => {
                    routes.push(route);
                }
                NetlinkPayload::Error(error) => {
                    return match error.code {
                        Some(code) => Err(std::io::Error::from_raw_os_error(-code.get())),
                        None => Ok(routes),
                    };
                }
                NetlinkPayload::Done(_) => return Ok(routes),
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += length;
        }
    }
}

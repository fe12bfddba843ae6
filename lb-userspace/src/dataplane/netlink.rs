//! Asks the kernel (rtnetlink) which XDP program an interface runs.
//!
//! aya attaches and replaces programs but cannot say what else is attached,
//! which xlbd needs to refuse an interface that runs a program not its own.

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage, LinkXdp, XdpAttached};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// The XDP program attached to one interface, in any mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttachedXdp {
    /// Kernel id of the program (as `bpftool prog show id N` prints it).
    pub prog_id: u32,
    /// Whether it runs in generic (skb) mode rather than in the driver.
    pub generic: bool,
}

/// Returns the XDP program attached to the interface with index `if_index`,
/// or `None` when it has none.
///
/// # Errors
///
/// When the netlink socket fails or the kernel answers with an error (for
/// example, no such interface).
pub fn attached_xdp(if_index: u32) -> std::io::Result<Option<AttachedXdp>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;

    let mut request = LinkMessage::default();
    request.header.index = if_index;
    let mut packet = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::from(RouteNetlinkMessage::GetLink(request)),
    );
    packet.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    packet.header.sequence_number = 1;
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0)?;

    loop {
        let (reply, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < reply.len() {
            let message: NetlinkMessage<RouteNetlinkMessage> =
                NetlinkMessage::deserialize(&reply[offset..]).map_err(invalid_data)?;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    return Ok(prog_of(&link));
                }
                NetlinkPayload::Error(error) => {
                    if let Some(code) = error.code {
                        return Err(std::io::Error::from_raw_os_error(-code.get()));
                    }
                }
                NetlinkPayload::Done(_) => return Ok(None),
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += length;
        }
    }
}

fn prog_of(link: &LinkMessage) -> Option<AttachedXdp> {
    let xdp = link
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::Xdp(xdp) => Some(xdp),
            _ => None,
        })?;
    // IFLA_XDP_PROG_ID is only present when exactly one program is
    // attached; with several modes at once each has its own id.
    let prog_id = xdp
        .iter()
        .find_map(|item| match item {
            LinkXdp::ProgId(id) | LinkXdp::DrvProgId(id) | LinkXdp::SkbProgId(id) => Some(*id),
            _ => None,
        })
        .filter(|&id| id != 0)?;
    let generic = xdp
        .iter()
        .any(|item| matches!(item, LinkXdp::Attached(XdpAttached::SocketBuffer)));
    Some(AttachedXdp { prog_id, generic })
}

fn invalid_data(error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string())
}

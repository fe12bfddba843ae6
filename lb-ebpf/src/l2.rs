//! The Ethernet header and VLAN tags in front of the IP packet: saved
//! before the frame grows at the front, written back after.

use aya_ebpf::programs::XdpContext;

use crate::net::{ETH_HLEN, ETH_TYPE_OFF, VLAN_HLEN, load, store};

/// The link-layer header as received.
#[derive(Clone, Copy)]
pub struct L2Header {
    /// Destination MAC.
    pub dmac: [u8; 6],
    /// Source MAC.
    pub smac: [u8; 6],
    /// Up to two VLAN tags (TPID and TCI each), as on the wire.
    pub tags: [u8; 8],
    /// Bytes of header: 14, 18 or 22.
    pub len: usize,
}

/// Reads the `len`-byte link-layer header at the start of the frame.
#[inline(always)]
pub fn read_l2(ctx: &XdpContext, len: usize) -> Option<L2Header> {
    let macs = load::<12>(ctx, 0)?;
    let mut l2 = L2Header {
        dmac: [0; 6],
        smac: [0; 6],
        tags: [0; 8],
        len,
    };
    l2.dmac.copy_from_slice(&macs[..6]);
    l2.smac.copy_from_slice(&macs[6..]);
    if len >= ETH_HLEN + VLAN_HLEN {
        let tag = load::<4>(ctx, ETH_TYPE_OFF)?;
        l2.tags[..4].copy_from_slice(&tag);
    }
    if len >= ETH_HLEN + 2 * VLAN_HLEN {
        let tag = load::<4>(ctx, ETH_TYPE_OFF + VLAN_HLEN)?;
        l2.tags[4..].copy_from_slice(&tag);
    }
    Some(l2)
}

/// Writes `l2`'s tags between the new MACs and `ether_type` at the start
/// of the frame.
#[inline(always)]
pub fn write_l2(
    ctx: &XdpContext,
    l2: &L2Header,
    dmac: &[u8; 6],
    smac: &[u8; 6],
    ether_type: u16,
) -> Option<()> {
    store(ctx, 0, dmac)?;
    store(ctx, 6, smac)?;
    if l2.len >= ETH_HLEN + VLAN_HLEN {
        let tag = [l2.tags[0], l2.tags[1], l2.tags[2], l2.tags[3]];
        store(ctx, ETH_TYPE_OFF, &tag)?;
    }
    if l2.len >= ETH_HLEN + 2 * VLAN_HLEN {
        let tag = [l2.tags[4], l2.tags[5], l2.tags[6], l2.tags[7]];
        store(ctx, ETH_TYPE_OFF + VLAN_HLEN, &tag)?;
    }
    store(ctx, l2.len - 2, &ether_type.to_be_bytes())
}

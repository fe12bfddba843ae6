//! Bounds-checked access to the frame, and the header constants xlb reads.
//!
//! Every read and write goes through [`frame_ptr`], which checks the access
//! against `data_end` in the form the verifier tracks: `data + off + len`
//! compared with `data_end`. Offsets must be bounded (at most a few KiB)
//! before they get here, so the verifier can follow them.

use aya_ebpf::programs::XdpContext;

/// Bytes of an Ethernet header without tags.
pub const ETH_HLEN: usize = 14;
/// Offset of the EtherType in an untagged Ethernet header.
pub const ETH_TYPE_OFF: usize = 12;
/// Bytes of one 802.1Q/802.1ad tag.
pub const VLAN_HLEN: usize = 4;
/// EtherType of IPv4.
pub const ETH_P_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// EtherType of an 802.1Q (customer) VLAN tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// EtherType of an 802.1ad (service) VLAN tag.
pub const ETH_P_8021AD: u16 = 0x88a8;

/// Bytes of an IPv4 header without options.
pub const IPV4_HLEN: usize = 20;
/// Bytes of the fixed IPv6 header.
pub const IPV6_HLEN: usize = 40;
/// IPv4 "don't fragment" bit of the flags/offset field.
pub const IPV4_DF: u16 = 0x4000;
/// IPv4 "more fragments" bit and fragment offset of the flags/offset field.
pub const IPV4_MF_OFFSET: u16 = 0x3fff;

/// IPv6 extension headers xlb walks (next-header values).
pub const IPV6_HOP_BY_HOP: u8 = 0;
/// See [`IPV6_HOP_BY_HOP`].
pub const IPV6_ROUTING: u8 = 43;
/// See [`IPV6_HOP_BY_HOP`].
pub const IPV6_FRAGMENT: u8 = 44;
/// See [`IPV6_HOP_BY_HOP`].
pub const IPV6_AUTH: u8 = 51;
/// See [`IPV6_HOP_BY_HOP`].
pub const IPV6_DEST_OPTS: u8 = 60;

/// Bytes of a TCP header without options.
pub const TCP_HLEN: usize = 20;
/// Bytes of a UDP header.
pub const UDP_HLEN: usize = 8;
/// Bytes of an ICMP or ICMPv6 header (type, code, checksum, 4 more).
pub const ICMP_HLEN: usize = 8;

/// Pointer to `len` bytes at `off` in the frame, or `None` when the frame
/// is shorter.
#[inline(always)]
pub fn frame_ptr(ctx: &XdpContext, off: usize, len: usize) -> Option<*mut u8> {
    let (start, end) = bounds(ctx);
    if start + off + len > end {
        return None;
    }
    Some((start + off) as *mut u8)
}

/// Copies `N` bytes at `off` out of the frame.
#[inline(always)]
pub fn load<const N: usize>(ctx: &XdpContext, off: usize) -> Option<[u8; N]> {
    let ptr = frame_ptr(ctx, off, N)?;
    // SAFETY: `frame_ptr` checked that `N` bytes from `ptr` lie in the frame;
    // `[u8; N]` has alignment 1.
    Some(unsafe { (ptr as *const [u8; N]).read() })
}

/// The `N` frame bytes at `off`, read in place.
#[inline(always)]
pub fn view<const N: usize>(ctx: &XdpContext, off: usize) -> Option<&[u8; N]> {
    let ptr = frame_ptr(ctx, off, N)?;
    // SAFETY: `frame_ptr` checked that `N` bytes from `ptr` lie in the
    // frame, which stays put until the program adjusts it; `[u8; N]` has
    // alignment 1 and every bit pattern is valid.
    Some(unsafe { &*(ptr as *const [u8; N]) })
}

/// The `N` frame bytes at `off`, to write in place (headers being built).
/// Callers hold one such view at a time and drop it before adjusting the
/// frame.
#[inline(always)]
pub fn view_mut<const N: usize>(ctx: &XdpContext, off: usize) -> Option<&mut [u8; N]> {
    let ptr = frame_ptr(ctx, off, N)?;
    // SAFETY: as in `view`; the frame is not Rust memory, and callers keep
    // views of it from overlapping.
    Some(unsafe { &mut *(ptr as *mut [u8; N]) })
}

/// Reads the network-order `u16` at `off`.
#[inline(always)]
pub fn load_be16(ctx: &XdpContext, off: usize) -> Option<u16> {
    load::<2>(ctx, off).map(u16::from_be_bytes)
}

/// Copies `bytes` into the frame at `off`; `None` when it does not fit.
#[inline(always)]
pub fn store<const N: usize>(ctx: &XdpContext, off: usize, bytes: &[u8; N]) -> Option<()> {
    let ptr = frame_ptr(ctx, off, N)?;
    // SAFETY: `frame_ptr` checked that `N` bytes from `ptr` lie in the frame;
    // `[u8; N]` has alignment 1.
    unsafe { (ptr as *mut [u8; N]).write(*bytes) };
    Some(())
}

/// Bytes from `data` to `data_end`.
#[inline(always)]
pub fn frame_len(ctx: &XdpContext) -> usize {
    let (start, end) = bounds(ctx);
    end - start
}

/// `data` and `data_end`, read from the context where they are used.
///
/// The loads are volatile so the compiler cannot hoist them into a caller
/// and pass them to a BPF subprogram as plain integers: the verifier then
/// sees a zero-extension of `pkt_end` and rejects it ("pointer arithmetic
/// on pkt_end prohibited").
#[inline(always)]
fn bounds(ctx: &XdpContext) -> (usize, usize) {
    // SAFETY: `ctx.ctx` is the program's `xdp_md`, valid for the whole run.
    unsafe {
        let md = ctx.ctx;
        let start = core::ptr::read_volatile(&raw const (*md).data) as usize;
        let end = core::ptr::read_volatile(&raw const (*md).data_end) as usize;
        (start, end)
    }
}

/// Largest offset into the frame a parsed header may start at. Frames on
/// XDP without multi-buffer fit in a page, so nothing real lies beyond.
pub const MAX_HEADER_OFF: usize = 0xfff;

/// `value`, with everything the verifier knows about it forgotten.
///
/// The verifier prunes a path only when its state is contained in one
/// already checked. Header offsets come out of the IPv6 extension walk with
/// a different range on every path, so without this the rest of the
/// program is verified once per combination (beyond the 1M-instruction
/// limit). The value goes through the stack as two 16-bit halves read back
/// as one 32-bit word, which the verifier treats as unknown; callers bound
/// it again, so every path continues with the same range.
#[inline(always)]
pub fn forget_range(value: usize) -> usize {
    let mut word = 0u32;
    let halves = &raw mut word as *mut u16;
    // SAFETY: both writes and the read stay inside `word` (4 bytes, aligned
    // for `u32` and so for `u16`); every byte is initialised.
    unsafe {
        core::ptr::write_volatile(halves, value as u16);
        core::ptr::write_volatile(halves.add(1), (value >> 16) as u16);
        core::ptr::read_volatile(&raw const word) as usize
    }
}

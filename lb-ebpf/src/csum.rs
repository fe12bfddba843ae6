//! Internet checksums (RFC 1071): folding, the IPv4 header sum, and sums
//! over frame bytes through `bpf_csum_diff`.

use aya_ebpf::{helpers::bpf_csum_diff, programs::XdpContext};

use crate::net::frame_ptr;

/// Folds a one's-complement sum of any width down to 16 bits.
#[inline(always)]
pub fn fold(sum: u64) -> u16 {
    let mut sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// Checksum field value of a 20-byte IPv4 header whose checksum bytes are
/// zero, in network order.
#[inline(always)]
pub fn ipv4_header(hdr: &[u8; 20]) -> [u8; 2] {
    let mut sum = 0u64;
    let mut i = 0;
    while i < 20 {
        sum += u64::from(u16::from_be_bytes([hdr[i], hdr[i + 1]]));
        i += 2;
    }
    (!fold(sum)).to_be_bytes()
}

/// One's-complement sum of `len` frame bytes at `off`, where `len` is a
/// multiple of 4 and at most `MAX` (the bound the verifier checks the
/// access against). The sum is over words as the CPU loads them, so fold it
/// and store it with `to_ne_bytes`.
#[inline(always)]
pub fn sum_frame<const MAX: usize>(ctx: &XdpContext, off: usize, len: usize) -> Option<u64> {
    let ptr = frame_ptr(ctx, off, MAX)?;
    if len > MAX || len % 4 != 0 {
        return None;
    }
    // SAFETY: `frame_ptr` checked that `MAX >= len` bytes from `ptr` are in
    // the frame; with no "from" buffer the helper only reads `ptr`.
    let sum = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, ptr as *mut u32, len as u32, 0) };
    u64::try_from(sum).ok()
}

/// One's-complement sum of a network-order 32-bit value, in the same
/// CPU-load order as [`sum_frame`].
#[inline(always)]
pub fn sum_be32(value: u32) -> u64 {
    u64::from(u32::from_ne_bytes(value.to_be_bytes()))
}

//! The contract between xlb's XDP programs and its user side.
//!
//! Every map key and value the kernel reads is declared here once, as a
//! `#[repr(C)]` struct with explicit padding and a size assertion. Addresses
//! are kept as 16 network-order bytes for both families: an IPv4 address
//! fills the first 4 bytes and leaves the other 12 zero, and a `family`
//! field says which it is. Multi-byte integers that come from packets keep
//! network order and say so in their name (`port_be`); everything else is in
//! host order.
//!
//! With the `user` feature every type implements `aya::Pod`.

#![no_std]

pub mod decap;
pub mod hash;
pub mod maps;
pub mod policy;
pub mod stats;

pub use decap::{DecapKey, DecapStat};
pub use hash::{FlowHasher, flow_hash, split_bits};
pub use policy::{PolicyCounters, SourceRule, SourceRuleKey, TenantLimit};
pub use stats::{Stat, TrafficCounters};

/// Most VIPs a node may be configured for (`limits.vips`); the VIP-indexed
/// maps are sized at load for the configured limit, not for this.
pub const MAX_VIPS: u32 = 1024;

/// Most backend slots a node may be configured for (`limits.backends`);
/// one slot per (VIP, backend address) pair. The backend-indexed maps are
/// sized at load for the configured limit.
pub const MAX_BACKENDS: u32 = 131_072;

/// VIPs the maps have room for when the config sets no `limits.vips`, and
/// the size the kernel object declares (loaders resize it).
pub const DEFAULT_VIP_LIMIT: u32 = 64;

/// Backend slots the maps have room for when the config sets no
/// `limits.backends`, and the size the kernel object declares.
pub const DEFAULT_BACKEND_LIMIT: u32 = 4096;

/// Largest Maglev table a VIP may have (a prime).
pub const MAX_TABLE_SIZE: u32 = 65537;

/// Maglev table size used when the config names none (a prime).
pub const DEFAULT_TABLE_SIZE: u32 = 65537;

/// Entries in the `MAGLEV` array for room for `vips` VIPs: two halves
/// (active and standby) of `MAX_TABLE_SIZE` slots for each. At
/// `MAX_VIPS` that is 134 million slots (512 MiB), so maps are sized for
/// the configured limit.
pub const fn maglev_entries(vips: u32) -> u32 {
    vips * 2 * MAX_TABLE_SIZE
}

/// Entries in the `MAGLEV` array the kernel object declares: room for
/// `DEFAULT_VIP_LIMIT` VIPs (33 MB).
pub const MAGLEV_ENTRIES: u32 = maglev_entries(DEFAULT_VIP_LIMIT);

/// Entries in `VIPS` for room for `vips` VIPs: a service key each plus
/// address keys, one per (address, protocol), so at most two more.
pub const fn vip_keys(vips: u32) -> u32 {
    vips * 3
}

/// Default capacity of the `FLOWS` connection table, in flows.
pub const DEFAULT_FLOW_CAPACITY: u32 = 262_144;

/// 64-bit words in the `VIP_ADDRS` filter (65 536 bits, 8 KiB).
pub const VIP_FILTER_WORDS: u32 = 1024;

/// Where the `VIP_ADDRS` filter keeps the bit of destination `addr`
/// (family `family`): the word index and the bit's mask.
///
/// The address words are folded and mixed (MurmurHash3's finaliser), so
/// neighbouring addresses land on unrelated bits. A set bit means "some VIP
/// may live at this address"; a clear one means none does.
#[inline(always)]
pub fn vip_filter_bit(addr: &[u8; 16], family: u8) -> (u32, u64) {
    let word = |i: usize| u32::from_le_bytes([addr[i], addr[i + 1], addr[i + 2], addr[i + 3]]);
    let mut h = word(0) ^ word(4) ^ word(8) ^ word(12) ^ family as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    let bit = h % (VIP_FILTER_WORDS * 64);
    (bit / 64, 1 << (bit % 64))
}

/// Most IPv6 extension headers walked before the packet counts as malformed.
pub const MAX_IPV6_EXT_HEADERS: usize = 6;

/// Most 802.1Q/802.1ad tags parsed in front of the IP header.
pub const MAX_VLAN_TAGS: usize = 2;

/// Interface MTU assumed when the config names none, in bytes of L3 packet.
pub const DEFAULT_MTU: u32 = 1500;

/// Backend id stored in Maglev slots that have no backend.
pub const NO_BACKEND: u32 = u32::MAX;

/// Address family values used in keys (`AF_INET`, `AF_INET6` on Linux).
pub const FAMILY_V4: u8 = 2;
/// See [`FAMILY_V4`].
pub const FAMILY_V6: u8 = 10;

/// IP protocol numbers used in keys and encapsulation.
pub const PROTO_ICMP: u8 = 1;
/// IPv4-in-IP encapsulation (`IPPROTO_IPIP`).
pub const PROTO_IPIP: u8 = 4;
/// TCP.
pub const PROTO_TCP: u8 = 6;
/// UDP.
pub const PROTO_UDP: u8 = 17;
/// IPv6-in-IP encapsulation (`IPPROTO_IPV6`).
pub const PROTO_IPV6: u8 = 41;
/// ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;

/// [`VipKey::kind`]: the key names one (address, port, protocol) service;
/// port 0 means every port of the address.
pub const VIP_KIND_SERVICE: u8 = 0;
/// [`VipKey::kind`]: the key names an address and protocol only (port 0).
/// User space writes one for every (address, protocol) that has a VIP. The
/// kernel uses it for IP fragments, which carry no port after the first, and
/// to tell truncated VIP traffic (dropped) from other traffic (passed).
pub const VIP_KIND_ADDRESS: u8 = 1;

/// Key of `VIPS`: which service a packet is for.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VipKey {
    /// Destination address, network order; IPv4 in bytes 0..4.
    pub addr: [u8; 16],
    /// Destination port, network order; 0 for a port-0 VIP or an address key.
    pub port_be: u16,
    /// IP protocol (`PROTO_TCP` or `PROTO_UDP`).
    pub proto: u8,
    /// `FAMILY_V4` or `FAMILY_V6`.
    pub family: u8,
    /// `VIP_KIND_SERVICE` or `VIP_KIND_ADDRESS`.
    pub kind: u8,
    /// Always zero.
    pub _pad: [u8; 3],
}
const _: () = assert!(core::mem::size_of::<VipKey>() == 24);

/// [`Vip::flags`]: hash the client address only, so one client always
/// reaches the same backend.
pub const VIP_F_SOURCE_AFFINITY: u32 = 1 << 0;
/// [`Vip::flags`]: set on address keys whose fragments cannot be told apart
/// between several port VIPs; such fragments are dropped and counted.
pub const VIP_F_NO_FRAGMENTS: u32 = 1 << 1;

/// [`Vip::flags`]: look new flows' clients up in `SOURCE_RULES` under
/// this table's id (pool, tenant class, deny).
pub const VIP_F_SOURCE_RULES: u32 = 1 << 2;
/// [`Vip::flags`]: with `VIP_F_SOURCE_RULES`, some rule denies, so every
/// packet (tracked flows too) is looked up, not only new flows. Without
/// it, tracked packets of the table skip the trie.
pub const VIP_F_SOURCE_DENY: u32 = 1 << 3;
/// [`Vip::flags`]: `canary_share` of the new flows that choose this table
/// go to table `canary_id` instead.
pub const VIP_F_CANARY: u32 = 1 << 4;
/// [`Vip::flags`]: a new flow whose Maglev slot here has no usable
/// backend goes to table `fallback_id` (one hop, no chains).
pub const VIP_F_FALLBACK: u32 = 1 << 5;

/// Value of `VIPS` and of `POOL_TABLES`: a table (one pool of one VIP)
/// and which Maglev half it uses now.
///
/// All zero beyond `id` and the table fields means no policy: the
/// `VIP_F_*` bits turn each part on.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vip {
    /// Index of this table, below `MAX_VIPS`; addresses `VIP_STATS`,
    /// `POLICY_STATS`, `POOL_TABLES` and the table's two halves of
    /// `MAGLEV`, and is what `Backend::vip_id` and `Flow::vip_id` name.
    pub id: u32,
    /// `VIP_F_*` bits.
    pub flags: u32,
    /// Slots in this table's Maglev table, a prime up to `MAX_TABLE_SIZE`.
    pub table_size: u32,
    /// Which half of the table's `MAGLEV` region is live: 0 or 1. User
    /// space fills the other half, then rewrites this value (in
    /// `POOL_TABLES` first, then in the `VIPS` entries that hold it), so a
    /// packet never sees a half-written table.
    pub table_half: u32,
    /// With `VIP_F_CANARY`: the canary table's id.
    pub canary_id: u32,
    /// With `VIP_F_CANARY`: new flows per 65 536 sent to the canary, up to
    /// `policy::CANARY_SHARE_ALL`; a flow goes when
    /// `split_bits(flow hash) < canary_share`, so the choice is stable per
    /// flow. 0 sends none.
    pub canary_share: u32,
    /// With `VIP_F_FALLBACK`: the fallback table's id.
    pub fallback_id: u32,
    /// Id shared by every table of one configured VIP (its default
    /// table's id). A tracked flow keeps a table other than its service's
    /// only while that table's `owner_id` is the service's, so a flow does
    /// not follow a freed and reused table id to another VIP.
    pub owner_id: u32,
}
const _: () = assert!(core::mem::size_of::<Vip>() == 32);

impl Vip {
    /// Index in `MAGLEV` of slot 0 of this VIP's live table.
    pub const fn table_base(&self) -> u32 {
        maglev_base(self.id, self.table_half)
    }
}

/// Index in `MAGLEV` of slot 0 of half `half` (0 or 1) of VIP `vip_id`.
pub const fn maglev_base(vip_id: u32, half: u32) -> u32 {
    (vip_id * 2 + (half & 1)) * MAX_TABLE_SIZE
}

/// [`Backend::flags`]: the backend is up (healthy, or not checked); its
/// tracked flows stay with it.
pub const BACKEND_F_UP: u32 = 1 << 0;
/// [`Backend::flags`]: the backend holds slots in its VIP's live table, so
/// it takes new flows. Up without this bit means draining.
pub const BACKEND_F_IN_TABLE: u32 = 1 << 1;

/// Value of `BACKENDS`, indexed by backend id: where one VIP's flows go.
/// An entry with `flags == 0` is unused or down.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backend {
    /// Backend address, network order; IPv4 in bytes 0..4. The outer
    /// destination of encapsulated packets.
    pub addr: [u8; 16],
    /// `FAMILY_V4` or `FAMILY_V6`: also picks the outer header.
    pub family: u8,
    /// Always zero.
    pub _pad: [u8; 3],
    /// `BACKEND_F_*` bits.
    pub flags: u32,
    /// The table (VIP, or one pool of a VIP) this backend slot belongs to.
    pub vip_id: u32,
    /// Always zero.
    pub _pad2: u32,
}
const _: () = assert!(core::mem::size_of::<Backend>() == 32);

/// Key of `FLOWS`: a connection as the client sent it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Client address, network order; IPv4 in bytes 0..4.
    pub src: [u8; 16],
    /// VIP address, network order; IPv4 in bytes 0..4.
    pub dst: [u8; 16],
    /// Client port, network order.
    pub sport_be: u16,
    /// VIP port, network order.
    pub dport_be: u16,
    /// IP protocol.
    pub proto: u8,
    /// `FAMILY_V4` or `FAMILY_V6`.
    pub family: u8,
    /// Always zero.
    pub _pad: [u8; 2],
}
const _: () = assert!(core::mem::size_of::<FlowKey>() == 40);

/// Value of `FLOWS`: the backend a tracked connection goes to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    /// Backend id (index of `BACKENDS`).
    pub backend_id: u32,
    /// Id of the table the flow was scheduled in (after source rules,
    /// canary split and fallback), so flows can be counted per table
    /// without a lookup, and a flow whose backend goes down is re-steered
    /// inside its own table (`POOL_TABLES[vip_id]`).
    pub vip_id: u32,
    /// `bpf_ktime_get_coarse_ns()` (`CLOCK_MONOTONIC_COARSE`, within a tick
    /// of `CLOCK_MONOTONIC`) when the flow was last seen, refreshed at most
    /// once per `FLOW_TOUCH_INTERVAL_NS` to keep the cache line quiet.
    pub last_seen_ns: u64,
}
const _: () = assert!(core::mem::size_of::<Flow>() == 16);

/// How stale `Flow::last_seen_ns` may get before a packet rewrites it.
pub const FLOW_TOUCH_INTERVAL_NS: u64 = 1_000_000_000;

/// [`Settings::flags`]: `gateway_mac` holds a MAC to use when the FIB has
/// no neighbour for a backend.
pub const SETTINGS_F_GATEWAY_MAC: u32 = 1 << 0;

/// Value of `SETTINGS[0]`: node-wide forwarding settings, written by xlbd.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Outer IPv4 source prefix, network order.
    pub src_v4: [u8; 4],
    /// Bits of the outer IPv4 source taken from the flow hash (the host
    /// part of the prefix), network order.
    pub src_v4_hostmask: [u8; 4],
    /// Outer IPv6 source prefix, network order.
    pub src_v6: [u8; 16],
    /// Bits of the last 4 bytes of the outer IPv6 source taken from the
    /// flow hash, network order.
    pub src_v6_hostmask: [u8; 4],
    /// Largest outer L3 packet the interface sends, in bytes.
    pub mtu: u32,
    /// Next-hop MAC used when `bpf_fib_lookup` finds no neighbour.
    pub gateway_mac: [u8; 6],
    /// Always zero.
    pub _pad: [u8; 2],
    /// `SETTINGS_F_*` bits.
    pub flags: u32,
    /// SYN guard: new flows a SYN may enter in `FLOWS` per second, per
    /// CPU; 0 turns the guard off. SYNs beyond it are steered by the
    /// Maglev table alone, so a flood cannot evict established flows.
    pub new_flows_per_s: u32,
    /// SYN guard: new flows a CPU may enter at once after a quiet spell
    /// (the bucket's depth), at least 1 when the guard is on.
    pub new_flow_burst: u32,
}
const _: () = assert!(core::mem::size_of::<Settings>() == 52);

/// Writes `v4` into the first 4 bytes of a 16-byte key address.
pub const fn v4_key_addr(v4: [u8; 4]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = v4[0];
    a[1] = v4[1];
    a[2] = v4[2];
    a[3] = v4[3];
    a
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: every type here is `repr(C)`, `Copy`, made only of integers and
    // byte arrays, with all padding spelled out as fields, so any bit
    // pattern is valid and no byte is uninitialised.
    unsafe impl aya::Pod for super::VipKey {}
    unsafe impl aya::Pod for super::Vip {}
    unsafe impl aya::Pod for super::Backend {}
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::Flow {}
    unsafe impl aya::Pod for super::Settings {}
    unsafe impl aya::Pod for super::TrafficCounters {}
    unsafe impl aya::Pod for super::DecapKey {}
    unsafe impl aya::Pod for super::SourceRuleKey {}
    unsafe impl aya::Pod for super::SourceRule {}
    unsafe impl aya::Pod for super::TenantLimit {}
    unsafe impl aya::Pod for super::PolicyCounters {}
}

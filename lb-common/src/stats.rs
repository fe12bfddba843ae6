//! Counters the XDP program keeps: global outcomes and per-service traffic.

/// What happened to a packet, indexing the per-CPU `STATS` array.
///
/// Every packet the program sees moves exactly one of these.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stat {
    /// Not IPv4 or IPv6 (ARP, LLDP, a third VLAN tag, ...): passed.
    PassNotIp = 0,
    /// IP but not for a VIP (address, port, protocol): passed.
    PassNotVip,
    /// ICMP to a VIP address that is not an error about a VIP flow: passed.
    PassIcmp,
    /// Encapsulated to a backend and sent back out (XDP_TX).
    TxForwarded,
    /// A SYN beyond the CPU's new-flow budget (the SYN guard), encapsulated
    /// to its Maglev backend without entering `FLOWS` (XDP_TX).
    TxForwardedUntracked,
    /// An ICMP error about a VIP flow, encapsulated to that flow's backend.
    TxIcmpSteered,
    /// A "fragmentation needed" / "packet too big" sent to the client
    /// because the encapsulated packet would exceed the MTU.
    TxIcmpTooBig,
    /// VIP traffic cut short inside the L3 or L4 header: dropped.
    DropTruncated,
    /// VIP traffic with an invalid IP header (length fields, version): dropped.
    DropBadHeader,
    /// IPv6 VIP traffic with more than `MAX_IPV6_EXT_HEADERS` extension
    /// headers, or an unknown one before the L4 header: dropped.
    DropExtHeaders,
    /// A fragment for an address with several port VIPs, so its VIP cannot
    /// be known without the first fragment: dropped.
    DropFragment,
    /// The VIP has no usable backend: dropped.
    DropNoBackend,
    /// Too big once encapsulated and may not be fragmented-by-ICMP (IPv4
    /// without DF): dropped.
    DropTooBig,
    /// No FIB route or neighbour to the backend and no gateway MAC: dropped.
    DropNoRoute,
    /// `bpf_xdp_adjust_head`/`_tail` refused to grow or shrink the frame:
    /// dropped.
    DropAdjustFailed,
    /// From a client a `RULE_DENY` source rule of the VIP names: dropped.
    DropDenied,
    /// A new flow over its tenant class's new-flow budget
    /// (`TENANT_LIMITS`): dropped.
    DropTenantLimit,
}

impl Stat {
    /// Every counter, in index order.
    pub const ALL: [Stat; 17] = [
        Stat::PassNotIp,
        Stat::PassNotVip,
        Stat::PassIcmp,
        Stat::TxForwarded,
        Stat::TxForwardedUntracked,
        Stat::TxIcmpSteered,
        Stat::TxIcmpTooBig,
        Stat::DropTruncated,
        Stat::DropBadHeader,
        Stat::DropExtHeaders,
        Stat::DropFragment,
        Stat::DropNoBackend,
        Stat::DropTooBig,
        Stat::DropNoRoute,
        Stat::DropAdjustFailed,
        Stat::DropDenied,
        Stat::DropTenantLimit,
    ];

    /// Entries in the `STATS` array.
    pub const COUNT: u32 = Self::ALL.len() as u32;

    /// Index in `STATS`.
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// The XDP action the packet got: `"pass"`, `"tx"` or `"drop"`.
    pub const fn action(self) -> &'static str {
        match self {
            Stat::PassNotIp | Stat::PassNotVip | Stat::PassIcmp => "pass",
            Stat::TxForwarded
            | Stat::TxForwardedUntracked
            | Stat::TxIcmpSteered
            | Stat::TxIcmpTooBig => "tx",
            _ => "drop",
        }
    }

    /// Short snake-case reason, used as a metric label and in `xlbctl stats`.
    pub const fn reason(self) -> &'static str {
        match self {
            Stat::PassNotIp => "not_ip",
            Stat::PassNotVip => "not_vip",
            Stat::PassIcmp => "icmp",
            Stat::TxForwarded => "forwarded",
            Stat::TxForwardedUntracked => "forwarded_untracked",
            Stat::TxIcmpSteered => "icmp_steered",
            Stat::TxIcmpTooBig => "icmp_too_big",
            Stat::DropTruncated => "truncated",
            Stat::DropBadHeader => "bad_header",
            Stat::DropExtHeaders => "ext_headers",
            Stat::DropFragment => "fragment",
            Stat::DropNoBackend => "no_backend",
            Stat::DropTooBig => "too_big",
            Stat::DropNoRoute => "no_route",
            Stat::DropAdjustFailed => "adjust_failed",
            Stat::DropDenied => "denied",
            Stat::DropTenantLimit => "tenant_limit",
        }
    }
}

/// Traffic through one VIP or one backend, per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrafficCounters {
    /// Packets forwarded.
    pub packets: u64,
    /// Bytes of the packets as received (L3 and up, before encapsulation).
    pub bytes: u64,
    /// Flows newly entered in `FLOWS`.
    pub new_flows: u64,
}
const _: () = assert!(core::mem::size_of::<TrafficCounters>() == 24);

impl TrafficCounters {
    /// Adds `other` into `self` (for summing per-CPU values).
    pub fn add(&mut self, other: &TrafficCounters) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.new_flows += other.new_flows;
    }
}

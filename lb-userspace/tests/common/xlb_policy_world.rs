//! The routing-policy world of the `xlb` packet tests: one VIP with port
//! pools, source-rule pools, a canary and a fallback, written straight
//! into the maps as xlbd would, and a runner for its table of flows.

#![allow(dead_code, reason = "each test binary uses part of the helpers")]

use std::{collections::HashMap as StdHashMap, net::IpAddr};

use aya::maps::{Array, LpmTrie, MapData, PerCpuArray, lpm_trie::Key};
use lb_common::{
    FlowKey, PolicyCounters, SourceRule, SourceRuleKey, Stat, TenantLimit, VIP_F_SOURCE_DENY,
    VIP_F_SOURCE_RULES, VIP_KIND_SERVICE, Vip, VipKey, flow_hash, hash::HashInput,
};

use super::xlb_frames::*;
use super::xlb_harness::*;
use super::xlb_world::*;

/// A test table: its id and backends; the address, port and protocol are
/// the service's for a VIP, unused for a pool reached only by policy.
pub const fn table(id: u32, addr: IpAddr, port: u16, proto: u8, v6: bool, n: u32) -> TestVip {
    TestVip {
        id,
        addr,
        port,
        proto,
        backend_v6: v6,
        backends: n,
        flags: 0,
        address_flags: 0,
    }
}

/// The VIP's address.
pub const LLM_ADDR: [u8; 4] = [192, 0, 2, 20];
/// The IPv6 VIP's address, 2001:db8:f::20.
pub const LLM6_ADDR: IpAddr = IpAddr::V6(std::net::Ipv6Addr::new(
    0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x20,
));
/// `a` as an address.
pub const fn ip4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]))
}
const NOWHERE: IpAddr = ip4([0, 0, 0, 0]);

/// TCP 192.0.2.20:8000, default pool "chat-eu" (table 0, with rules).
pub const LLM: TestVip = TestVip {
    flags: VIP_F_SOURCE_RULES | VIP_F_SOURCE_DENY,
    ..table(0, ip4(LLM_ADDR), 8000, TCP, false, 3)
};
/// Port 8001 of the VIP: pool "embeddings" (table 1, no rules).
pub const EMBEDDINGS: TestVip = table(1, ip4(LLM_ADDR), 8001, TCP, false, 2);
/// Pool "chat-us": clients in 10.1.0.0/16, and chat-eu's fallback.
pub const CHAT_US: TestVip = table(2, NOWHERE, 0, TCP, false, 2);
/// Pool "chat-v2": the canary of chat-eu.
pub const CHAT_V2: TestVip = table(3, NOWHERE, 0, TCP, false, 2);
/// Pool "chat-lab": clients in 10.1.7.0/24 (inside chat-us's /16).
pub const CHAT_LAB: TestVip = table(4, NOWHERE, 0, TCP, false, 2);
/// Pool "chat-any": clients in 10.0.0.0/8 (around chat-us's /16).
pub const CHAT_ANY: TestVip = table(8, NOWHERE, 0, TCP, false, 2);
/// TCP [2001:db8:f::20]:8000, IPv6 backends (table 5, with rules).
pub const LLM6: TestVip = TestVip {
    flags: VIP_F_SOURCE_RULES,
    ..table(5, LLM6_ADDR, 8000, TCP, true, 2)
};
/// IPv6 pool of clients in 2001:db8:aa::/48.
pub const REGION6: TestVip = table(6, NOWHERE, 0, TCP, true, 2);
/// IPv6 pool of clients in 2001:db8:aa:1::/64 (inside the /48).
pub const SITE6: TestVip = table(7, NOWHERE, 0, TCP, true, 2);
/// UDP 192.0.2.21:9000 (table 9, with rules), for tenant limits on UDP.
pub const LLM_UDP: TestVip = TestVip {
    flags: VIP_F_SOURCE_RULES,
    ..table(9, ip4([192, 0, 2, 21]), 9000, UDP, false, 2)
};

/// Tenant class "free".
pub const FREE: u32 = 1;
/// Tenant class "paid".
pub const PAID: u32 = 2;

/// Loads `xlb` with the VIPs, pools and rules above; no canary, no
/// fallback and no tenant limit yet (tests turn them on).
pub fn policy_lb(flow_capacity: u32) -> Lb {
    let mut lb = Lb::load_with_flow_capacity(flow_capacity);
    for vip in [LLM, LLM6, LLM_UDP] {
        lb.add_vip(&vip);
    }
    lb.add_port_pool(&EMBEDDINGS, LLM.id);
    for pool in [CHAT_US, CHAT_V2, CHAT_LAB, CHAT_ANY] {
        lb.add_pool_table(&pool, LLM.id);
    }
    for pool in [REGION6, SITE6] {
        lb.add_pool_table(&pool, LLM6.id);
    }
    let rules: [(u32, IpAddr, u32, u32); 5] = [
        (LLM.id, ip4([10, 0, 0, 0]), 8, CHAT_ANY.id),
        (LLM.id, ip4([10, 1, 0, 0]), 16, CHAT_US.id),
        (LLM.id, ip4([10, 1, 7, 0]), 24, CHAT_LAB.id),
        (
            LLM6.id,
            "2001:db8:aa::".parse().expect("v6"),
            48,
            REGION6.id,
        ),
        (
            LLM6.id,
            "2001:db8:aa:1::".parse().expect("v6"),
            64,
            SITE6.id,
        ),
    ];
    for (table_id, prefix, len, pool) in rules {
        lb.add_source_rule(table_id, prefix, len, pool_rule(pool));
    }
    lb
}

/// A rule that sends its clients to table `pool`.
pub fn pool_rule(pool: u32) -> SourceRule {
    SourceRule {
        table_id: pool,
        ..SourceRule::default()
    }
}

/// A rule that puts its clients in tenant class `class`, same pool.
pub fn class_rule(class: u32) -> SourceRule {
    SourceRule {
        class_id: class,
        ..SourceRule::default()
    }
}

/// A rule that drops its clients.
pub fn deny_rule() -> SourceRule {
    SourceRule {
        action: lb_common::policy::RULE_DENY,
        ..SourceRule::default()
    }
}

impl Lb {
    /// Adds pool table `pool` of the VIP whose default table is `owner`:
    /// backends (up, in the table), both Maglev halves and its
    /// `POOL_TABLES` entry, but no `VIPS` key.
    pub fn add_pool_table(&mut self, pool: &TestVip, owner: u32) {
        self.fill_table(pool);
        let value = Vip {
            id: pool.id,
            flags: pool.flags,
            table_size: TABLE_SIZE,
            owner_id: owner,
            ..Vip::default()
        };
        self.put_table(value);
        self.vips.insert(pool.id, value);
    }

    /// Adds `pool` as a port pool: a pool table whose service key is its
    /// own port at its address.
    pub fn add_port_pool(&mut self, pool: &TestVip, owner: u32) {
        self.add_pool_table(pool, owner);
        let value = self.vips[&pool.id];
        self.put_vip(service_key(pool), value);
    }

    /// Rewrites table `id` (its `POOL_TABLES` entry, and its service key if
    /// `service` names one) through `edit`.
    pub fn edit_table(&mut self, id: u32, service: Option<&TestVip>, edit: impl FnOnce(&mut Vip)) {
        let mut value = self.vips[&id];
        edit(&mut value);
        self.put_table(value);
        if let Some(service) = service {
            self.put_vip(service_key(service), value);
        }
        self.vips.insert(id, value);
    }

    /// Makes `table` a live half with every slot empty (`NO_BACKEND`), as
    /// xlbd writes a pool with no usable backend.
    pub fn empty_table(&mut self, table: &TestVip, service: Option<&TestVip>) {
        let empty = vec![lb_common::NO_BACKEND; TABLE_SIZE as usize];
        self.swap_pool_table(table, service, empty);
    }

    /// Writes `slots` into `table`'s standby half and makes it live.
    pub fn swap_pool_table(&mut self, table: &TestVip, service: Option<&TestVip>, slots: Vec<u32>) {
        let standby = self.vips[&table.id].table_half ^ 1;
        self.write_table(table.id, standby, &slots);
        self.edit_table(table.id, service, |v| v.table_half = standby);
        self.tables.insert(table.id, slots);
    }

    /// Adds (or replaces) the source rule for `prefix`/`len` under table
    /// `table_id`.
    pub fn add_source_rule(&mut self, table_id: u32, prefix: IpAddr, len: u32, rule: SourceRule) {
        let (addr, family) = key_addr(prefix);
        let data = SourceRuleKey::rule(table_id, family, &addr, len);
        let mut map: LpmTrie<&mut MapData, SourceRuleKey, SourceRule> =
            LpmTrie::try_from(self.ebpf.map_mut("SOURCE_RULES").expect("SOURCE_RULES"))
                .expect("lpm trie");
        let key = Key::new(SourceRuleKey::prefix_len(len), data);
        map.insert(&key, rule, 0).expect("write source rule");
    }

    /// Removes the source rule for `prefix`/`len` under table `table_id`.
    pub fn remove_source_rule(&mut self, table_id: u32, prefix: IpAddr, len: u32) {
        let (addr, family) = key_addr(prefix);
        let data = SourceRuleKey::rule(table_id, family, &addr, len);
        let mut map: LpmTrie<&mut MapData, SourceRuleKey, SourceRule> =
            LpmTrie::try_from(self.ebpf.map_mut("SOURCE_RULES").expect("SOURCE_RULES"))
                .expect("lpm trie");
        let key = Key::new(SourceRuleKey::prefix_len(len), data);
        map.remove(&key).expect("remove source rule");
    }

    /// Gives tenant class `class` a budget of `per_s` new flows a second
    /// per CPU, `burst` at once.
    pub fn set_tenant_limit(&mut self, class: u32, per_s: u32, burst: u32) {
        let mut map: Array<&mut MapData, TenantLimit> =
            Array::try_from(self.ebpf.map_mut("TENANT_LIMITS").expect("TENANT_LIMITS"))
                .expect("array");
        let limit = TenantLimit {
            new_flows_per_s: per_s,
            burst,
        };
        map.set(class, limit, 0).expect("write tenant limit");
    }

    /// `POLICY_STATS[table_id]` summed over CPUs.
    pub fn policy(&self, table_id: u32) -> PolicyCounters {
        let map: PerCpuArray<&MapData, PolicyCounters> =
            PerCpuArray::try_from(self.ebpf.map("POLICY_STATS").expect("POLICY_STATS"))
                .expect("per-cpu array");
        let mut total = PolicyCounters::default();
        for c in map.get(&table_id, 0).expect("read policy counters").iter() {
            total.add(c);
        }
        total
    }

    /// The table each backend id belongs to.
    pub fn backend_tables(&self) -> StdHashMap<u32, u32> {
        let map: Array<&MapData, lb_common::Backend> =
            Array::try_from(self.ebpf.map("BACKENDS").expect("BACKENDS")).expect("array");
        self.backend_addrs
            .keys()
            .map(|&id| (id, map.get(&id, 0).expect("read backend").vip_id))
            .collect()
    }

    /// The backend id behind outer destination `addr`.
    pub fn backend_at(&self, addr: IpAddr) -> u32 {
        self.backend_addrs
            .iter()
            .find(|(_, a)| **a == addr)
            .map(|(id, _)| *id)
            .unwrap_or_else(|| panic!("outer destination {addr} is a known backend"))
    }
}

/// The service key of `vip`.
pub fn service_key(vip: &TestVip) -> VipKey {
    let (addr, family) = key_addr(vip.addr);
    VipKey {
        addr,
        port_be: vip.port.to_be(),
        proto: vip.proto,
        family,
        kind: VIP_KIND_SERVICE,
        _pad: [0; 3],
    }
}

/// A client flow's key and its first frame (SYN, or a UDP datagram) and a
/// later one (ACK, or another datagram), to `vip` at `port`.
pub struct Client {
    /// The flow.
    pub key: FlowKey,
    /// Its first packet.
    pub first: Vec<u8>,
    /// A later packet of it.
    pub later: Vec<u8>,
}

/// Client `src`:`sport` of `vip`, at `vip`'s port or `port`.
pub fn client(src: IpAddr, sport: u16, vip: &TestVip, port: u16) -> Client {
    let key = flow_key(src, vip.addr, sport, port, vip.proto);
    let l4 = |first: bool| match vip.proto {
        UDP => udp(sport, port, 8),
        _ => tcp(sport, port, first, 0),
    };
    let frame = |first: bool| match (src, vip.addr) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            ether4(&ipv4(s.octets(), d.octets(), vip.proto, &l4(first), V4_DF))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            ether6(&ipv6(s.octets(), d.octets(), vip.proto, &l4(first)))
        }
        _ => panic!("client and VIP of one family"),
    };
    Client {
        key,
        first: frame(true),
        later: frame(false),
    }
}

/// Where a row's packet must go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Encapsulated to the backend Maglev gives the flow in this table.
    Table(u32),
    /// Dropped, counted under this outcome.
    Dropped(Stat),
}

/// Sends `frame` of `key` and asserts where it went: the action, the
/// backend (outer destination) as Maglev in the expected table predicts,
/// one `STATS` outcome, one packet on the table's `VIP_STATS`, and the
/// table recorded in `FLOWS` for a first packet. Returns the backend id.
pub fn assert_route(lb: &Lb, what: &str, frame: &[u8], key: &FlowKey, route: Route) -> u32 {
    let before = lb.stats();
    let out = lb.run(frame);
    let after = lb.stats();
    let moved: Vec<Stat> = Stat::ALL
        .iter()
        .zip(before.iter().zip(&after))
        .flat_map(|(&stat, (b, a))| std::iter::repeat_n(stat, (a - b) as usize))
        .collect();
    match route {
        Route::Dropped(stat) => {
            assert_eq!(out.action, XDP_DROP, "{what}: action");
            assert_eq!(moved, [stat], "{what}: outcome");
            u32::MAX
        }
        Route::Table(table) => {
            assert_eq!(out.action, XDP_TX, "{what}: action");
            assert_eq!(moved, [Stat::TxForwarded], "{what}: outcome");
            let backend = lb.backend_at(outer_dst(&out.frame, 14));
            let expected = lb.maglev_backend(table, key, HashInput::FiveTuple);
            assert_eq!(backend, expected, "{what}: backend of table {table}");
            let flow = lb
                .flow(key)
                .unwrap_or_else(|| panic!("{what}: flow tracked"));
            assert_eq!(
                (flow.backend_id, flow.vip_id),
                (backend, table),
                "{what}: FLOWS names the backend and its table"
            );
            backend
        }
    }
}

/// The flow hash of `key` (five-tuple).
pub fn hash_of(key: &FlowKey) -> u32 {
    flow_hash(key, HashInput::FiveTuple)
}

//! Names of the maps in the XDP objects, as user space opens and pins them.
//!
//! Each name is the symbol of the map in `lb-ebpf`; the kernel side declares
//! the map with the key and value types named here.

/// `HashMap<VipKey, Vip>`: services, written by xlbd.
pub const VIPS: &str = "VIPS";
/// `Array<u64>`, `VIP_FILTER_WORDS` words: a bitmap with the
/// `vip_filter_bit` of every VIP address set, so traffic to other addresses
/// is passed without a `VIPS` lookup; written by xlbd.
pub const VIP_ADDRS: &str = "VIP_ADDRS";
/// `Array<Backend>`, `limits.backends` entries indexed by backend id, written
/// by xlbd.
pub const BACKENDS: &str = "BACKENDS";
/// `Array<u32>` of backend ids, `maglev_entries(limits.vips)` entries: two halves of
/// `MAX_TABLE_SIZE` slots per VIP (see `maglev_base`), written by xlbd.
pub const MAGLEV: &str = "MAGLEV";
/// `LruHashMap<FlowKey, Flow>`: tracked connections, written by the XDP
/// program (xlbd only reads and prunes).
pub const FLOWS: &str = "FLOWS";
/// `Array<Settings>`, one entry: node-wide forwarding settings, written by
/// xlbd.
pub const SETTINGS: &str = "SETTINGS";
/// `PerCpuArray<u64>`, `Stat::COUNT` entries: packets by outcome, written
/// by the XDP program.
pub const STATS: &str = "STATS";
/// `PerCpuArray<u64>`, one entry: the SYN guard's clock, in ns of
/// `bpf_ktime_get_coarse_ns`, when this CPU's new-flow budget is next
/// whole (see `Settings::new_flows_per_s`), written by the XDP program.
pub const SYN_GUARD: &str = "SYN_GUARD";
/// `PerCpuArray<u64>`, one entry: flows entered in `FLOWS` (inserts that
/// succeeded), written by the XDP program. Only LRU eviction removes
/// entries, so evictions are inserts minus the entries present.
pub const FLOW_INSERTS: &str = "FLOW_INSERTS";
/// `PerCpuArray<TrafficCounters>`, `limits.vips` entries by VIP id, written by
/// the XDP program.
pub const VIP_STATS: &str = "VIP_STATS";
/// `PerCpuArray<TrafficCounters>`, `limits.backends` entries by backend id,
/// written by the XDP program.
pub const BACKEND_STATS: &str = "BACKEND_STATS";
/// `Array<Vip>`, `MAX_VIPS` entries by table id: every table, so the
/// kernel can move a flow from the service's table to another by id
/// (source rule, canary, fallback, re-steering a tracked flow). Holds the
/// same values as the `VIPS` entries naming the table, written by xlbd
/// before them; a freed id is zeroed (`table_size` 0: no table).
pub const POOL_TABLES: &str = "POOL_TABLES";
/// `LpmTrie<SourceRuleKey, SourceRule>` (key: a `u32` prefix length, see
/// `SourceRuleKey::prefix_len`, then the `SourceRuleKey`),
/// `MAX_SOURCE_RULES` entries (`BPF_F_NO_PREALLOC`): client prefixes per
/// table, longest wins, written by xlbd.
pub const SOURCE_RULES: &str = "SOURCE_RULES";
/// `Array<TenantLimit>`, `MAX_TENANT_CLASSES` entries by class id: each
/// tenant class's new-flow budget, written by xlbd.
pub const TENANT_LIMITS: &str = "TENANT_LIMITS";
/// `PerCpuArray<u64>`, `MAX_TENANT_CLASSES` entries by class id: each
/// class's budget clock, in ns of `bpf_ktime_get_coarse_ns`, when this
/// CPU's budget of the class is next whole (as `SYN_GUARD`), written by
/// the XDP program.
pub const TENANT_GUARD: &str = "TENANT_GUARD";
/// `PerCpuArray<PolicyCounters>`, `MAX_VIPS` entries by table id: what
/// the routing policy did, written by the XDP program.
pub const POLICY_STATS: &str = "POLICY_STATS";

/// `HashMap<DecapKey, u8>`: addresses `xlb_decap` decapsulates for, written
/// by whoever attaches it (value unused, 1).
pub const DECAP_ADDRS: &str = "DECAP_ADDRS";
/// `PerCpuArray<u64>`, `DecapStat::COUNT` entries, written by `xlb_decap`.
pub const DECAP_STATS: &str = "DECAP_STATS";

/// Name of the load-balancing XDP program (function and object).
pub const PROG_XLB: &str = "xlb";
/// Name of the backend-side decapsulation XDP program (function and object).
pub const PROG_DECAP: &str = "xlb_decap";

//! The maps of the `xlb` program; names, keys and values are lb-common's
//! contract (`lb_common::maps`).
//!
//! The maps indexed by VIP or backend id are declared for the default
//! limits; xlbd resizes them at load for the config's `limits`
//! (`EbpfLoader::map_max_entries`), and every lookup is bounds-checked by
//! the kernel against the size the map really has.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray},
};
use lb_common::{
    Backend, DEFAULT_BACKEND_LIMIT, DEFAULT_FLOW_CAPACITY, DEFAULT_VIP_LIMIT, Flow, FlowKey,
    MAGLEV_ENTRIES, PolicyCounters, Settings, SourceRule, SourceRuleKey, Stat, TenantLimit,
    TrafficCounters, VIP_FILTER_WORDS, Vip, VipKey,
    policy::{MAX_SOURCE_RULES, MAX_TENANT_CLASSES},
    vip_keys,
};

/// Services: one `VIP_KIND_SERVICE` key per VIP plus `VIP_KIND_ADDRESS`
/// keys for each (address, protocol), so room for three keys per VIP.
/// Written by xlbd.
#[map]
pub static VIPS: HashMap<VipKey, Vip> = HashMap::with_max_entries(vip_keys(DEFAULT_VIP_LIMIT), 0);

/// Bitmap of VIP addresses (`lb_common::vip_filter_bit`), 64 bits per
/// entry, written by xlbd: a clear bit means no VIP at that address.
#[map]
pub static VIP_ADDRS: Array<u64> = Array::with_max_entries(VIP_FILTER_WORDS, 0);

/// Backends by id, written by xlbd.
#[map]
pub static BACKENDS: Array<Backend> = Array::with_max_entries(DEFAULT_BACKEND_LIMIT, 0);

/// Backend ids of every VIP's two Maglev table halves (see
/// `lb_common::maglev_base`), written by xlbd.
#[map]
pub static MAGLEV: Array<u32> = Array::with_max_entries(MAGLEV_ENTRIES, 0);

/// Tracked connections, written here; user space may resize it before
/// load.
#[map]
pub static FLOWS: LruHashMap<FlowKey, Flow> =
    LruHashMap::with_max_entries(DEFAULT_FLOW_CAPACITY, 0);

/// Node-wide forwarding settings at index 0, written by xlbd.
#[map]
pub static SETTINGS: Array<Settings> = Array::with_max_entries(1, 0);

/// Packets by outcome (`Stat`), per CPU.
#[map]
pub static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Stat::COUNT, 0);

/// The SYN guard's clock at index 0, per CPU: the `bpf_ktime_get_coarse_ns`
/// time at which this CPU's new-flow budget is whole again (0 before the
/// first SYN), written here (see `syn_guard`).
#[map]
pub static SYN_GUARD: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Flows entered in `FLOWS` at index 0, per CPU (see
/// `lb_common::maps::FLOW_INSERTS`).
#[map]
pub static FLOW_INSERTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Counts one flow entered in `FLOWS`.
#[inline(always)]
pub fn count_flow_insert() {
    if let Some(counter) = FLOW_INSERTS.get_ptr_mut(0) {
        // SAFETY: per-CPU value, written only by this CPU (see `count`).
        unsafe { *counter += 1 };
    }
}

/// Traffic by VIP id, per CPU.
#[map]
pub static VIP_STATS: PerCpuArray<TrafficCounters> =
    PerCpuArray::with_max_entries(DEFAULT_VIP_LIMIT, 0);

/// Traffic by backend id, per CPU.
#[map]
pub static BACKEND_STATS: PerCpuArray<TrafficCounters> =
    PerCpuArray::with_max_entries(DEFAULT_BACKEND_LIMIT, 0);

/// Every table by id (the values of `VIPS`, and the tables only source
/// rules, canaries and fallbacks reach), written by xlbd.
#[map]
pub static POOL_TABLES: Array<Vip> = Array::with_max_entries(DEFAULT_VIP_LIMIT, 0);

/// Client prefixes per table (longest wins), written by xlbd. The trie is
/// never preallocated (`BPF_F_NO_PREALLOC`, which aya sets for tries).
#[map]
pub static SOURCE_RULES: LpmTrie<SourceRuleKey, SourceRule> =
    LpmTrie::with_max_entries(MAX_SOURCE_RULES, 0);

/// New-flow budget of each tenant class, by class id, written by xlbd.
#[map]
pub static TENANT_LIMITS: Array<TenantLimit> = Array::with_max_entries(MAX_TENANT_CLASSES, 0);

/// Each tenant class's budget clock by class id, per CPU, in ns of
/// `bpf_ktime_get_coarse_ns` (as `SYN_GUARD`), written here.
#[map]
pub static TENANT_GUARD: PerCpuArray<u64> = PerCpuArray::with_max_entries(MAX_TENANT_CLASSES, 0);

/// What the routing policy did, by table id, per CPU.
#[map]
pub static POLICY_STATS: PerCpuArray<PolicyCounters> =
    PerCpuArray::with_max_entries(DEFAULT_VIP_LIMIT, 0);

/// Counts one packet under `stat`.
#[inline(always)]
pub fn count(stat: Stat) {
    if let Some(counter) = STATS.get_ptr_mut(stat.index()) {
        // SAFETY: per-CPU value, and XDP runs with preemption off, so
        // nothing else writes this CPU's slot meanwhile.
        unsafe { *counter += 1 };
    }
}

/// Adds one forwarded packet of `bytes` (and a new flow, if `new_flow`) to
/// the VIP's and the backend's traffic counters.
#[inline(always)]
pub fn count_traffic(vip_id: u32, backend_id: u32, bytes: usize, new_flow: bool) {
    let add = |counters: Option<*mut TrafficCounters>| {
        if let Some(c) = counters {
            // SAFETY: per-CPU value, written only by this CPU (see `count`).
            unsafe {
                (*c).packets += 1;
                (*c).bytes += bytes as u64;
                (*c).new_flows += u64::from(new_flow);
            }
        }
    };
    add(VIP_STATS.get_ptr_mut(vip_id));
    add(BACKEND_STATS.get_ptr_mut(backend_id));
}

/// The node settings (zeroes before xlbd writes them).
#[inline(always)]
pub fn settings() -> Option<&'static Settings> {
    SETTINGS.get(0)
}

//! Loads `xlb` into a fresh network namespace, fills its maps with a small
//! set of VIPs, and predicts which backend a flow must reach.

#![allow(dead_code, reason = "each test binary uses part of the helpers")]

use std::{collections::HashMap as StdHashMap, net::IpAddr};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray},
    programs::Xdp,
};
use lb_common::{
    BACKEND_F_IN_TABLE, BACKEND_F_UP, Backend, FAMILY_V4, FAMILY_V6, Flow, FlowKey, MAX_TABLE_SIZE,
    SETTINGS_F_GATEWAY_MAC, Settings, Stat, TrafficCounters, VIP_KIND_ADDRESS, VIP_KIND_SERVICE,
    Vip, VipKey, flow_hash, hash::HashInput, maglev_base, v4_key_addr,
};
use xlb::{
    maglev::{MaglevBackend, build_table},
    testrun::{TestRunOptions, TestRunOutput, test_run},
};

/// Slots of every test VIP's Maglev table (a prime).
pub const TABLE_SIZE: u32 = 251;
/// VIP (table) ids the tests use are below this; MAGLEV is sized for
/// them only.
pub const TEST_VIPS: u32 = 12;
/// Next-hop MAC the program falls back to (the FIB knows no neighbours in
/// the test's empty namespace).
pub const GATEWAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
/// Outer IPv4 source prefix; the last byte comes from the flow hash.
pub const SRC_V4: [u8; 4] = [10, 255, 0, 0];
/// Outer IPv6 source prefix; the last byte comes from the flow hash.
pub const SRC_V6: [u8; 16] = [0xfd, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
/// Interface MTU in the settings.
pub const MTU: u32 = 1500;

/// One VIP of the test world.
#[derive(Clone, Copy, Debug)]
pub struct TestVip {
    /// VIP id.
    pub id: u32,
    /// Address.
    pub addr: IpAddr,
    /// Port (0: every port).
    pub port: u16,
    /// IP protocol.
    pub proto: u8,
    /// Backends' family.
    pub backend_v6: bool,
    /// Backends (0 for a VIP without any).
    pub backends: u32,
    /// `VIP_F_*` flags of its service key.
    pub flags: u32,
    /// `VIP_F_*` flags of its address key.
    pub address_flags: u32,
}

/// Key address bytes and family of `addr`.
pub fn key_addr(addr: IpAddr) -> ([u8; 16], u8) {
    match addr {
        IpAddr::V4(a) => (v4_key_addr(a.octets()), FAMILY_V4),
        IpAddr::V6(a) => (a.octets(), FAMILY_V6),
    }
}

/// Backend `i` (0-based) of VIP `vip`, and its id.
pub fn backend_of(vip: &TestVip, i: u32) -> (u32, IpAddr) {
    let id = vip.id * 4 + i;
    let addr: IpAddr = if vip.backend_v6 {
        format!("fd00:1:{}::{}", vip.id, i + 1).parse().expect("v6")
    } else {
        format!("10.1.{}.{}", vip.id, i + 1).parse().expect("v4")
    };
    (id, addr)
}

/// The loaded program and the tables written to it.
pub struct Lb {
    /// The object (maps and program).
    pub ebpf: Ebpf,
    /// Each VIP's live table content, as backend ids, by VIP id.
    pub tables: StdHashMap<u32, Vec<u32>>,
    /// The VIP values written, by VIP id.
    pub vips: StdHashMap<u32, Vip>,
    /// Backend addresses by backend id.
    pub backend_addrs: StdHashMap<u32, IpAddr>,
}

/// Moves this thread into a new, empty network namespace, so FIB lookups
/// fail the same way on every machine and the gateway MAC is used.
fn enter_fresh_netns() {
    // SAFETY: unshare(2) with CLONE_NEWNET only changes this thread's
    // namespace; no memory is involved.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET) failed (run as root): {}",
        std::io::Error::last_os_error()
    );
}

impl Lb {
    /// Loads `xlb` (unpinned) and writes the settings.
    pub fn load() -> Self {
        Self::load_with_flow_capacity(65_536)
    }

    /// Loads `xlb` with room for `flows` entries in `FLOWS` (the benchmark
    /// fills up to a million) and writes the settings.
    pub fn load_with_flow_capacity(flows: u32) -> Self {
        enter_fresh_netns();
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("MAGLEV", TEST_VIPS * 2 * MAX_TABLE_SIZE)
            .map_max_entries("FLOWS", flows)
            .load(xlb::objects::XLB)
            .expect("load the xlb object");
        let prog: &mut Xdp = ebpf
            .program_mut("xlb")
            .expect("program xlb")
            .try_into()
            .expect("xlb is XDP");
        prog.load().expect("the verifier accepts xlb");
        let mut lb = Lb {
            ebpf,
            tables: StdHashMap::new(),
            vips: StdHashMap::new(),
            backend_addrs: StdHashMap::new(),
        };
        lb.write_settings();
        lb
    }

    /// The program.
    pub fn prog(&self) -> &Xdp {
        self.ebpf
            .program("xlb")
            .expect("program xlb")
            .try_into()
            .expect("xlb is XDP")
    }

    /// Runs the program once on `frame`.
    pub fn run(&self, frame: &[u8]) -> TestRunOutput {
        test_run(self.prog(), frame, TestRunOptions::default()).expect("test run")
    }

    fn write_settings(&mut self) {
        let settings = Settings {
            src_v4: SRC_V4,
            src_v4_hostmask: [0, 0, 0, 0xff],
            src_v6: SRC_V6,
            src_v6_hostmask: [0, 0, 0, 0xff],
            mtu: MTU,
            gateway_mac: GATEWAY_MAC,
            flags: SETTINGS_F_GATEWAY_MAC,
            ..Settings::default()
        };
        let mut map: Array<&mut MapData, Settings> =
            Array::try_from(self.ebpf.map_mut("SETTINGS").expect("SETTINGS")).expect("array");
        map.set(0, settings, 0).expect("write settings");
    }

    /// Turns the SYN guard on at `per_s` new flows a second per CPU with a
    /// bucket of `burst`, or off with `per_s == 0`. The harness loads with
    /// the guard off, so the other tests and the bench see every SYN
    /// tracked.
    pub fn set_syn_guard(&mut self, per_s: u32, burst: u32) {
        let mut map: Array<&mut MapData, Settings> =
            Array::try_from(self.ebpf.map_mut("SETTINGS").expect("SETTINGS")).expect("array");
        let mut settings = map.get(&0, 0).expect("read settings");
        settings.new_flows_per_s = per_s;
        settings.new_flow_burst = burst;
        map.set(0, settings, 0).expect("write settings");
    }

    /// Adds `vip` with its service key, address key, backends (up, in the
    /// table) and a Maglev table in both halves.
    pub fn add_vip(&mut self, vip: &TestVip) {
        let (addr, family) = key_addr(vip.addr);
        let value = Vip {
            id: vip.id,
            flags: vip.flags,
            table_size: TABLE_SIZE,
            owner_id: vip.id,
            ..Vip::default()
        };
        let key = VipKey {
            addr,
            port_be: vip.port.to_be(),
            proto: vip.proto,
            family,
            kind: VIP_KIND_SERVICE,
            _pad: [0; 3],
        };
        self.put_table(value);
        self.put_vip(key, value);
        let address = VipKey {
            port_be: 0,
            kind: VIP_KIND_ADDRESS,
            ..key
        };
        self.put_vip(
            address,
            Vip {
                flags: vip.address_flags,
                ..value
            },
        );
        self.vips.insert(vip.id, value);
        self.fill_table(vip);
    }

    /// Gives table `vip` its backends (up, in the table) and writes the
    /// same Maglev table into both of its halves.
    pub fn fill_table(&mut self, vip: &TestVip) {
        let mut maglev = Vec::new();
        for i in 0..vip.backends {
            let (id, baddr) = backend_of(vip, i);
            self.set_backend(id, vip, baddr, BACKEND_F_UP | BACKEND_F_IN_TABLE);
            self.backend_addrs.insert(id, baddr);
            maglev.push((id, baddr));
        }
        let table = maglev_table(&maglev);
        self.write_table(vip.id, 0, &table);
        self.write_table(vip.id, 1, &table);
        self.tables.insert(vip.id, table);
    }

    /// Writes `value` at its id in `POOL_TABLES`, as xlbd does for every
    /// table before the `VIPS` entries that name it.
    pub fn put_table(&mut self, value: Vip) {
        let mut map: Array<&mut MapData, Vip> =
            Array::try_from(self.ebpf.map_mut("POOL_TABLES").expect("POOL_TABLES")).expect("array");
        map.set(value.id, value, 0).expect("write pool table");
    }

    /// Writes a `VIPS` entry, and sets its address's `VIP_ADDRS` bit.
    pub fn put_vip(&mut self, key: VipKey, value: Vip) {
        let (word, mask) = lb_common::vip_filter_bit(&key.addr, key.family);
        let mut filter: Array<&mut MapData, u64> =
            Array::try_from(self.ebpf.map_mut("VIP_ADDRS").expect("VIP_ADDRS")).expect("array");
        let bits = filter.get(&word, 0).expect("read the vip filter");
        filter
            .set(word, bits | mask, 0)
            .expect("write the vip filter");
        let mut map: HashMap<&mut MapData, VipKey, Vip> =
            HashMap::try_from(self.ebpf.map_mut("VIPS").expect("VIPS")).expect("hash map");
        map.insert(key, value, 0).expect("write vip");
    }

    /// Writes backend `id` of `vip`.
    pub fn set_backend(&mut self, id: u32, vip: &TestVip, addr: IpAddr, flags: u32) {
        let (addr, family) = key_addr(addr);
        let backend = Backend {
            addr,
            family,
            flags,
            vip_id: vip.id,
            ..Backend::default()
        };
        let mut map: Array<&mut MapData, Backend> =
            Array::try_from(self.ebpf.map_mut("BACKENDS").expect("BACKENDS")).expect("array");
        map.set(id, backend, 0).expect("write backend");
    }

    /// Changes only the flags of backend `id`.
    pub fn set_backend_flags(&mut self, id: u32, flags: u32) {
        let mut map: Array<&mut MapData, Backend> =
            Array::try_from(self.ebpf.map_mut("BACKENDS").expect("BACKENDS")).expect("array");
        let mut backend = map.get(&id, 0).expect("read backend");
        backend.flags = flags;
        map.set(id, backend, 0).expect("write backend");
    }

    /// Writes `table` into half `half` of VIP `vip_id`'s MAGLEV region.
    pub fn write_table(&mut self, vip_id: u32, half: u32, table: &[u32]) {
        let mut map: Array<&mut MapData, u32> =
            Array::try_from(self.ebpf.map_mut("MAGLEV").expect("MAGLEV")).expect("array");
        let base = maglev_base(vip_id, half);
        for (slot, &id) in table.iter().enumerate() {
            map.set(base + slot as u32, id, 0)
                .expect("write maglev slot");
        }
    }

    /// Fills the standby half with `table` and makes it live.
    pub fn swap_table(&mut self, vip: &TestVip, table: Vec<u32>) {
        let mut value = self.vips[&vip.id];
        let standby = value.table_half ^ 1;
        self.write_table(vip.id, standby, &table);
        value.table_half = standby;
        self.put_table(value);
        let (addr, family) = key_addr(vip.addr);
        let key = VipKey {
            addr,
            port_be: vip.port.to_be(),
            proto: vip.proto,
            family,
            kind: VIP_KIND_SERVICE,
            _pad: [0; 3],
        };
        self.put_vip(key, value);
        self.vips.insert(vip.id, value);
        self.tables.insert(vip.id, table);
    }

    /// The backend id Maglev gives `key` at VIP `vip_id` now.
    pub fn maglev_backend(&self, vip_id: u32, key: &FlowKey, input: HashInput) -> u32 {
        let hash = flow_hash(key, input);
        self.tables[&vip_id][(hash % TABLE_SIZE) as usize]
    }

    /// `STATS[stat]` summed over CPUs.
    pub fn stat(&self, stat: Stat) -> u64 {
        let map: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(self.ebpf.map("STATS").expect("STATS")).expect("per-cpu array");
        map.get(&stat.index(), 0).expect("read stat").iter().sum()
    }

    /// All of `STATS`, in `Stat::ALL` order.
    pub fn stats(&self) -> Vec<u64> {
        Stat::ALL.iter().map(|&s| self.stat(s)).collect()
    }

    /// Traffic counters of `map` ("VIP_STATS" or "BACKEND_STATS") at `id`.
    pub fn traffic(&self, map: &str, id: u32) -> TrafficCounters {
        let map: PerCpuArray<&MapData, TrafficCounters> =
            PerCpuArray::try_from(self.ebpf.map(map).expect("traffic map")).expect("per-cpu");
        let mut total = TrafficCounters::default();
        for c in map.get(&id, 0).expect("read traffic").iter() {
            total.add(c);
        }
        total
    }

    /// The `FLOWS` entry of `key`, if any.
    pub fn flow(&self, key: &FlowKey) -> Option<Flow> {
        let map: HashMap<&MapData, FlowKey, Flow> =
            HashMap::try_from(self.ebpf.map("FLOWS").expect("FLOWS")).expect("lru hash map");
        map.get(key, 0).ok()
    }
}

/// A Maglev table over `(id, address)` backends, as backend ids.
pub fn maglev_table(backends: &[(u32, IpAddr)]) -> Vec<u32> {
    let spec: Vec<MaglevBackend> = backends
        .iter()
        .map(|&(_, addr)| MaglevBackend { addr, weight: 1 })
        .collect();
    build_table(&spec, TABLE_SIZE)
        .expect("maglev table")
        .into_iter()
        .map(|i| {
            backends
                .get(i as usize)
                .map_or(lb_common::NO_BACKEND, |b| b.0)
        })
        .collect()
}

/// The flow key of a client-to-VIP packet.
pub fn flow_key(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, proto: u8) -> FlowKey {
    let (src, family) = key_addr(src);
    let (dst, _) = key_addr(dst);
    FlowKey {
        src,
        dst,
        sport_be: sport.to_be(),
        dport_be: dport.to_be(),
        proto,
        family,
        _pad: [0; 2],
    }
}

impl Lb {
    /// Runs `frame` `repeat` times; the kernel's mean ns per run.
    pub fn run_timed(&self, frame: &[u8], repeat: u32) -> u32 {
        let opts = TestRunOptions {
            repeat,
            ..TestRunOptions::default()
        };
        test_run(self.prog(), frame, opts)
            .expect("timed test run")
            .duration_ns
    }
}

/// A two-instruction XDP program (`r0 = XDP_PASS; exit`), the floor to
/// compare `xlb`'s times with.
pub fn trivial_program() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // BPF_ALU64 | BPF_MOV | BPF_K, dst r0, imm 2; then BPF_JMP | BPF_EXIT.
    let insns: [u64; 2] = [0x0000_0002_0000_00b7, 0x0000_0000_0000_0095];
    let license = c"GPL";
    #[repr(C)]
    #[derive(Default)]
    struct ProgLoadAttr {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
    }
    let attr = ProgLoadAttr {
        prog_type: 6, // BPF_PROG_TYPE_XDP
        insn_cnt: 2,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        expected_attach_type: 37, // BPF_XDP
        ..ProgLoadAttr::default()
    };
    // SAFETY: `attr` is a valid prefix of `union bpf_attr` for
    // BPF_PROG_LOAD (5) whose pointers outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            5,
            &attr as *const ProgLoadAttr,
            size_of::<ProgLoadAttr>(),
        )
    };
    assert!(
        fd >= 0,
        "load trivial program: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) }
}

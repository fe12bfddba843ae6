//! `xlb_decap` loaded in this process: its program and maps.

use std::{
    borrow::{Borrow, BorrowMut},
    collections::HashSet,
    net::IpAddr,
};

use aya::{
    Ebpf,
    maps::{HashMap, MapData, PerCpuArray},
    programs::Xdp,
};
use lb_common::{
    DecapKey, DecapStat, FAMILY_V4, FAMILY_V6,
    decap::MAX_DECAP_ADDRS,
    maps::{DECAP_ADDRS, DECAP_STATS, PROG_DECAP},
    v4_key_addr,
};

use super::error::{DecapError, map_error, program_error};

/// `xlb_decap` loaded in the kernel with private, unpinned maps and not
/// attached: for packet tests and benchmarks through `BPF_PROG_TEST_RUN`.
pub struct Decap {
    ebpf: Ebpf,
}

impl Decap {
    /// Loads the program.
    ///
    /// # Errors
    ///
    /// Fails when the kernel refuses the object or the program.
    pub fn load() -> Result<Self, DecapError> {
        let ebpf = Ebpf::load(crate::objects::XLB_DECAP).map_err(DecapError::Load)?;
        Self::from_ebpf(ebpf)
    }

    pub(super) fn from_ebpf(mut ebpf: Ebpf) -> Result<Self, DecapError> {
        let program: &mut Xdp = ebpf
            .program_mut(PROG_DECAP)
            .ok_or(DecapError::Missing(PROG_DECAP))?
            .try_into()
            .map_err(program_error("finding"))?;
        program.load().map_err(program_error("loading"))?;
        Ok(Self { ebpf })
    }

    /// The loaded program.
    ///
    /// # Errors
    ///
    /// Never in practice: the program was found when loading.
    pub fn program(&self) -> Result<&Xdp, DecapError> {
        self.ebpf
            .program(PROG_DECAP)
            .ok_or(DecapError::Missing(PROG_DECAP))?
            .try_into()
            .map_err(program_error("finding"))
    }

    pub(super) fn program_mut(&mut self) -> Result<&mut Xdp, DecapError> {
        self.ebpf
            .program_mut(PROG_DECAP)
            .ok_or(DecapError::Missing(PROG_DECAP))?
            .try_into()
            .map_err(program_error("finding"))
    }

    /// Replaces the set of addresses decapsulated for with `addrs`.
    ///
    /// # Errors
    ///
    /// Fails on more than `MAX_DECAP_ADDRS` addresses or a map error.
    pub fn set_addrs(&mut self, addrs: &[IpAddr]) -> Result<(), DecapError> {
        let map = self
            .ebpf
            .map_mut(DECAP_ADDRS)
            .ok_or(DecapError::Missing(DECAP_ADDRS))?;
        let mut map = HashMap::try_from(map).map_err(map_error(DECAP_ADDRS))?;
        write_addrs(&mut map, addrs)
    }

    /// The counters, summed over CPUs.
    ///
    /// # Errors
    ///
    /// Fails on a map error.
    pub fn counters(&self) -> Result<DecapCounters, DecapError> {
        let map = self
            .ebpf
            .map(DECAP_STATS)
            .ok_or(DecapError::Missing(DECAP_STATS))?;
        let map = PerCpuArray::try_from(map).map_err(map_error(DECAP_STATS))?;
        read_counters(&map)
    }
}

/// `DECAP_STATS` summed over CPUs, one count per [`DecapStat`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecapCounters {
    counts: [u64; DecapStat::COUNT as usize],
}

impl DecapCounters {
    /// Packets counted under `stat`.
    pub fn get(&self, stat: DecapStat) -> u64 {
        self.counts[stat as usize]
    }

    /// Every counter with its value, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (DecapStat, u64)> + '_ {
        DecapStat::ALL.iter().map(|&stat| (stat, self.get(stat)))
    }
}

/// The `DECAP_ADDRS` key of `addr`.
pub fn decap_key(addr: IpAddr) -> DecapKey {
    let (addr, family) = match addr {
        IpAddr::V4(v4) => (v4_key_addr(v4.octets()), FAMILY_V4),
        IpAddr::V6(v6) => (v6.octets(), FAMILY_V6),
    };
    DecapKey {
        addr,
        family,
        _pad: [0; 3],
    }
}

pub(super) fn check_addrs(addrs: &[IpAddr]) -> Result<(), DecapError> {
    if addrs.is_empty() {
        return Err(DecapError::NoAddrs);
    }
    let count = addrs.iter().collect::<HashSet<_>>().len();
    if count > MAX_DECAP_ADDRS as usize {
        return Err(DecapError::TooManyAddrs { count });
    }
    Ok(())
}

/// Makes `map` hold exactly `addrs`: adds the new ones first, then removes
/// the stale ones, so an address in both sets never misses a packet.
pub(super) fn write_addrs<T: BorrowMut<MapData>>(
    map: &mut HashMap<T, DecapKey, u8>,
    addrs: &[IpAddr],
) -> Result<(), DecapError> {
    check_addrs(addrs)?;
    let wanted: HashSet<DecapKey> = addrs.iter().map(|&addr| decap_key(addr)).collect();
    let present = map
        .keys()
        .collect::<Result<Vec<_>, _>>()
        .map_err(map_error(DECAP_ADDRS))?;
    for key in &wanted {
        map.insert(key, 1, 0).map_err(map_error(DECAP_ADDRS))?;
    }
    for key in present.iter().filter(|key| !wanted.contains(key)) {
        map.remove(key).map_err(map_error(DECAP_ADDRS))?;
    }
    Ok(())
}

pub(super) fn read_counters<T: Borrow<MapData>>(
    map: &PerCpuArray<T, u64>,
) -> Result<DecapCounters, DecapError> {
    let mut counters = DecapCounters::default();
    for stat in DecapStat::ALL {
        let per_cpu = map.get(&(stat as u32), 0).map_err(map_error(DECAP_STATS))?;
        counters.counts[stat as usize] = per_cpu.iter().sum();
    }
    Ok(counters)
}

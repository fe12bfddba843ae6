//! The Maglev tables as addresses, slot by slot: read back from the pinned
//! maps, or built from a config the way xlbd plans them. Backend ids are
//! local to one xlbd's history; what must match is the backend behind
//! each slot.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use xlb::config::Config;
use xlb::dataplane::from_config::desired_state;
use xlb::dataplane::live::describe_key;
use xlb::dataplane::{Live, Maps, PinDir};
use xlb::maglev::{MaglevBackend, build_table};

/// Each VIP's table by VIP, each slot the backend behind it (`None`: empty).
pub type Tables = BTreeMap<String, Vec<Option<IpAddr>>>;

/// The live tables in the maps pinned at `pin_path` (xlbd need not run).
pub fn pinned_tables(pin_path: &Path) -> Tables {
    let maps = Maps::open_pinned(&PinDir::new(pin_path))
        .unwrap_or_else(|err| panic!("opening the pinned maps: {err}"));
    let live = Live::read(&maps).unwrap_or_else(|err| panic!("reading the pinned maps: {err}"));
    let address = |id: &u32| live.backends.get(id).map(|backend| backend.addr);
    live.vips
        .iter()
        .map(|(key, vip)| (describe_key(key), vip.table.iter().map(address).collect()))
        .collect()
}

/// The tables xlbd must write for `config` (YAML), every backend healthy.
pub fn desired_tables(config: &str) -> Tables {
    let config: Config = Config::from_str(config, "storm.yaml")
        .unwrap_or_else(|err| panic!("the storm's config is invalid: {err}"))
        .config;
    let desired = desired_state(&config).unwrap_or_else(|err| panic!("desired state: {err}"));
    let mut tables = Tables::new();
    for vip in &desired.vips {
        let candidates: Vec<MaglevBackend> = vip
            .backends
            .iter()
            .map(|backend| MaglevBackend {
                addr: backend.addr,
                weight: if backend.takes_new_flows(true) {
                    backend.weight
                } else {
                    0
                },
            })
            .collect();
        let slots = build_table(&candidates, vip.table_size)
            .unwrap_or_else(|err| panic!("a table for {}: {err}", vip.name));
        let table = slots
            .iter()
            .map(|&slot| vip.backends.get(slot as usize).map(|b| b.addr))
            .collect();
        tables.insert(describe_key(&vip.key), table);
    }
    tables
}

/// How many slots of `a` and `b` differ, with VIPs missing from either
/// counted as all their slots.
pub fn slots_differing(a: &Tables, b: &Tables) -> usize {
    let mut differing = 0;
    for (vip, table) in a {
        differing += match b.get(vip) {
            Some(other) => table.iter().zip(other).filter(|(x, y)| x != y).count(),
            None => table.len(),
        };
    }
    differing
        + b.iter()
            .filter(|(vip, _)| !a.contains_key(*vip))
            .map(|(_, t)| t.len())
            .sum::<usize>()
}

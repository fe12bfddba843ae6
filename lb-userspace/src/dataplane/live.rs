//! xlbd's mirror of what the maps hold now, rebuilt from the pinned maps
//! when xlbd starts so that a restart picks up where the last one left.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::maps::MapError;
use lb_common::maps::{BACKENDS, MAGLEV, SETTINGS, SOURCE_RULES, VIP_ADDRS, VIPS};
use lb_common::{
    Backend, FAMILY_V4, FAMILY_V6, Settings, SourceRule, SourceRuleKey, TenantLimit,
    VIP_FILTER_WORDS, VIP_KIND_SERVICE, Vip, VipKey, maglev_base, vip_filter_bit,
};

use super::desired::AdminState;
use super::ids::Ids;
use super::maps::Maps;
use super::{DataplaneError, batch};

/// A service as it is in `VIPS` and its live `MAGLEV` half.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveVip {
    /// Config name; the address when adopted from the maps.
    pub name: String,
    /// The `VIPS` value.
    pub value: Vip,
    /// The live half of its Maglev table, backend ids.
    pub table: Vec<u32>,
}

/// A `BACKENDS` entry in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveBackend {
    /// Its address.
    pub addr: IpAddr,
    /// The entry as written.
    pub entry: Backend,
    /// Weight and state it was written for; unknown when adopted.
    pub config: Option<(u32, AdminState)>,
}

/// Everything xlbd has written, as it stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Live {
    /// Services by key.
    pub vips: HashMap<VipKey, LiveVip>,
    /// Backend entries in use, by id.
    pub backends: BTreeMap<u32, LiveBackend>,
    /// `VIP_KIND_ADDRESS` keys and their values.
    pub address_keys: HashMap<VipKey, Vip>,
    /// The `VIP_ADDRS` filter, `VIP_FILTER_WORDS` words.
    pub vip_addrs: Vec<u64>,
    /// `SETTINGS[0]`.
    pub settings: Settings,
    /// Ids given to the VIPs and backends above.
    pub ids: Ids,
    /// Port-pool service keys in `VIPS` and the table value each holds.
    pub port_keys: HashMap<VipKey, Vip>,
    /// `SOURCE_RULES` entries by (trie prefix length, key).
    pub source_rules: HashMap<(u32, SourceRuleKey), SourceRule>,
    /// `TENANT_LIMITS` entries written, from class 0.
    pub tenant_limits: Vec<TenantLimit>,
}

impl Live {
    /// Reads the maps back: services with their live tables, backends in
    /// use, address keys and settings.
    ///
    /// # Errors
    ///
    /// When a map cannot be read.
    pub fn read(maps: &Maps) -> Result<Self, DataplaneError> {
        let mut live = Live {
            ids: Ids::new(maps.limits()),
            ..Live::default()
        };
        for entry in maps.vips.iter() {
            let (key, value) = match entry {
                Ok(entry) => entry,
                // Removed between listing the key and reading it.
                Err(MapError::KeyNotFound) => continue,
                Err(source) => return Err(map_error(VIPS, source)),
            };
            if key.kind != VIP_KIND_SERVICE {
                live.address_keys.insert(key, value);
                continue;
            }
            // A port pool's key holds a table of another VIP's (its
            // owner's); only a VIP's own table has `owner_id == id`.
            if value.owner_id != value.id {
                live.port_keys.insert(key, value);
                continue;
            }
            let table = read_table(maps, &value)?;
            live.ids.adopt_vip(key, value.id);
            let name = describe_key(&key);
            live.vips.insert(key, LiveVip { name, value, table });
        }

        // One call per 2048 entries, not one per entry.
        let entries = batch::read_array(&maps.backends).map_err(|e| map_error(BACKENDS, e))?;
        for (id, entry) in (0..).zip(entries) {
            let Some(addr) = key_addr_to_ip(&entry.addr, entry.family) else {
                continue;
            };
            live.ids.adopt_backend(entry.vip_id, addr, id);
            let backend = LiveBackend {
                addr,
                entry,
                config: None,
            };
            live.backends.insert(id, backend);
        }

        for entry in maps.source_rules.iter() {
            let (key, rule) = match entry {
                Ok(entry) => entry,
                Err(MapError::KeyNotFound) => continue,
                Err(source) => return Err(map_error(SOURCE_RULES, source)),
            };
            live.source_rules
                .insert((key.prefix_len(), key.data()), rule);
        }

        live.settings = maps
            .settings
            .get(&0, 0)
            .map_err(|e| map_error(SETTINGS, e))?;
        live.vip_addrs = (0..VIP_FILTER_WORDS)
            .map(|i| {
                maps.vip_addrs
                    .get(&i, 0)
                    .map_err(|e| map_error(VIP_ADDRS, e))
            })
            .collect::<Result<_, _>>()?;
        Ok(live)
    }
}

/// The `VIP_ADDRS` words with the bit of every address in `keys` set.
pub fn vip_filter<'a>(keys: impl IntoIterator<Item = &'a VipKey>) -> Vec<u64> {
    let mut words = vec![0; VIP_FILTER_WORDS as usize];
    for key in keys {
        let (word, mask) = vip_filter_bit(&key.addr, key.family);
        words[word as usize] |= mask;
    }
    words
}

/// Writes the words of `wanted` that differ from `live.vip_addrs`.
///
/// # Errors
///
/// When a word cannot be written.
pub fn write_vip_filter(
    maps: &mut Maps,
    live: &mut Live,
    wanted: Vec<u64>,
) -> Result<(), DataplaneError> {
    for (i, &bits) in wanted.iter().enumerate() {
        if live.vip_addrs.get(i) != Some(&bits) {
            maps.vip_addrs
                .set(i as u32, bits, 0)
                .map_err(|e| map_error(VIP_ADDRS, e))?;
        }
    }
    live.vip_addrs = wanted;
    Ok(())
}

/// Reads the live half of `vip`'s Maglev table.
pub(super) fn read_table(maps: &Maps, vip: &Vip) -> Result<Vec<u32>, DataplaneError> {
    let base = vip.table_base();
    (base..base + vip.table_size)
        .map(|index| maps.maglev.get(&index, 0).map_err(|e| map_error(MAGLEV, e)))
        .collect()
}

/// Writes `table` into half `half` of VIP `vip_id`'s Maglev region.
///
/// # Errors
///
/// When a slot cannot be written.
pub fn write_table(
    maps: &mut Maps,
    vip_id: u32,
    half: u32,
    table: &[u32],
) -> Result<(), DataplaneError> {
    let base = maglev_base(vip_id, half);
    batch::write_array(&mut maps.maglev, base, table).map_err(|e| map_error(MAGLEV, e))
}

/// `addr` as a key address and family.
pub fn ip_to_key_addr(addr: IpAddr) -> ([u8; 16], u8) {
    match addr {
        IpAddr::V4(v4) => (lb_common::v4_key_addr(v4.octets()), FAMILY_V4),
        IpAddr::V6(v6) => (v6.octets(), FAMILY_V6),
    }
}

/// A key address back as an `IpAddr`; `None` for an unused entry.
pub fn key_addr_to_ip(addr: &[u8; 16], family: u8) -> Option<IpAddr> {
    match family {
        FAMILY_V4 => Some(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).into()),
        FAMILY_V6 => Some(Ipv6Addr::from(*addr).into()),
        _ => None,
    }
}

/// `address:port/protocol` of a service key, for logs.
pub fn describe_key(key: &VipKey) -> String {
    let addr =
        key_addr_to_ip(&key.addr, key.family).map_or_else(|| "?".to_owned(), |ip| ip.to_string());
    let proto = match key.proto {
        lb_common::PROTO_TCP => "tcp",
        lb_common::PROTO_UDP => "udp",
        _ => "?",
    };
    let port = u16::from_be(key.port_be);
    match key.family {
        FAMILY_V6 => format!("[{addr}]:{port}/{proto}"),
        _ => format!("{addr}:{port}/{proto}"),
    }
}

pub(super) fn map_error(name: &'static str, source: MapError) -> DataplaneError {
    DataplaneError::Map { name, source }
}

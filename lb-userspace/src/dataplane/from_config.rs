//! The config seen by the data plane: what to attach where, and what the
//! maps should hold. The only place the data plane reads `Config`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use lb_common::{
    SETTINGS_F_GATEWAY_MAC, Settings, VIP_F_SOURCE_AFFINITY, VIP_KIND_SERVICE, VipKey,
};

use crate::config::{AttachMode, BackendState, Config, Prefix};

use super::desired::{
    AdminState, DesiredBackend, DesiredCanary, DesiredPolicy, DesiredState, DesiredVip,
};
use super::error::XdpAttachMode;
use super::live::ip_to_key_addr;
use super::pins::PinDir;
use super::{DataplaneError, Limits};

/// The parts of the config that only take effect when xlbd starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Startup {
    /// Where maps and links are pinned.
    pub pins: PinDir,
    /// Interfaces and their attach modes.
    pub interfaces: Vec<(String, XdpAttachMode)>,
    /// FLOWS capacity, in flows.
    pub flow_capacity: u32,
    /// Room in the id-indexed maps.
    pub limits: Limits,
}

impl Startup {
    /// Takes the start-time settings from `config`.
    pub fn from_config(config: &Config) -> Self {
        let mode = |mode: AttachMode| match mode {
            AttachMode::Native => XdpAttachMode::Native,
            AttachMode::Generic => XdpAttachMode::Generic,
        };
        Self {
            pins: PinDir::new(&config.pin_path),
            interfaces: config
                .interfaces
                .iter()
                .map(|interface| (interface.name.clone(), mode(interface.mode)))
                .collect(),
            flow_capacity: config.flow_table_size,
            limits: config.limits,
        }
    }
}

/// What the maps should hold for `config`.
///
/// # Errors
///
/// When a VIP names a pool that does not exist (validation should have
/// caught it).
pub fn desired_state(config: &Config) -> Result<DesiredState, DataplaneError> {
    let mut vips = Vec::with_capacity(config.vips.len());
    let mut policy = BTreeMap::new();
    for vip in &config.vips {
        let (addr, family) = ip_to_key_addr(vip.address);
        let key = VipKey {
            addr,
            port_be: vip.port.to_be(),
            proto: vip.protocol.number(),
            family,
            kind: VIP_KIND_SERVICE,
            _pad: [0; 3],
        };
        let flags = if vip.source_affinity {
            VIP_F_SOURCE_AFFINITY
        } else {
            0
        };
        // The VIP's own table first, then one per other pool it reaches.
        for pool_name in config.tables_of(vip) {
            let pool = config
                .pools
                .get(pool_name)
                .ok_or_else(|| DataplaneError::UnknownPool {
                    vip: vip.name.clone(),
                    pool: pool_name.to_owned(),
                })?;
            let own = pool_name == vip.pool;
            let ports = vip
                .port_pools
                .iter()
                .filter(|(_, p)| p.as_str() == pool_name)
                .map(|(&port, _)| port)
                .collect();
            vips.push(DesiredVip {
                name: if own {
                    vip.name.clone()
                } else {
                    format!("{}/{pool_name}", vip.name)
                },
                key: if own {
                    key
                } else {
                    DesiredVip::table_key(&key, pool_name)
                },
                flags,
                table_size: vip.table_size,
                pool: pool_name.to_owned(),
                backends: pool.backends.iter().map(desired_backend).collect(),
                owner: (!own).then(|| vip.name.clone()),
                ports,
            });
        }
        if vip.canary.is_some() || !vip.source_rules.is_empty() {
            let entry = DesiredPolicy {
                canary: vip.canary.as_ref().map(|c| DesiredCanary {
                    pool: c.pool.clone(),
                    share: c.share,
                    rollback: c.rollback,
                }),
                source_rules: vip.source_rules.clone(),
            };
            policy.insert(vip.name.clone(), entry);
        }
    }
    let fallback = config
        .pools
        .iter()
        .filter_map(|(name, pool)| Some((name.clone(), pool.fallback.clone()?)))
        .collect();
    Ok(DesiredState {
        vips,
        settings: settings(config),
        policy,
        fallback,
        tenants: config.tenants.clone(),
    })
}

fn desired_backend(backend: &crate::config::BackendConfig) -> DesiredBackend {
    DesiredBackend {
        addr: backend.address,
        weight: backend.weight,
        state: match backend.state {
            BackendState::Ready => AdminState::Ready,
            BackendState::Drain => AdminState::Drain,
            BackendState::Maint => AdminState::Maint,
        },
    }
}

/// `SETTINGS[0]` for `config`'s encapsulation.
fn settings(config: &Config) -> Settings {
    let encap = &config.encap;
    let mut settings = Settings {
        mtu: encap.mtu,
        new_flows_per_s: config.syn_guard.new_flows_per_second,
        new_flow_burst: config.syn_guard.burst,
        ..Settings::default()
    };
    if let Some(Prefix {
        addr: IpAddr::V4(addr),
        len,
    }) = encap.source_v4
    {
        settings.src_v4 = addr.octets();
        settings.src_v4_hostmask = host_mask(32 - u32::from(len)).to_be_bytes();
    }
    if let Some(Prefix {
        addr: IpAddr::V6(addr),
        len,
    }) = encap.source_v6
    {
        settings.src_v6 = addr.octets();
        settings.src_v6_hostmask = host_mask(128 - u32::from(len)).to_be_bytes();
    }
    if let Some(mac) = encap.gateway_mac {
        settings.gateway_mac = mac;
        settings.flags |= SETTINGS_F_GATEWAY_MAC;
    }
    settings
}

/// The low `bits` bits set, at most 32.
fn host_mask(bits: u32) -> u32 {
    match bits {
        0 => 0,
        32.. => u32::MAX,
        bits => (1 << bits) - 1,
    }
}

#[cfg(test)]
mod tests {
    use super::host_mask;

    #[test]
    fn host_masks_cover_the_host_part_up_to_32_bits() {
        assert_eq!(host_mask(0), 0);
        assert_eq!(host_mask(8), 0xff);
        assert_eq!(host_mask(32), u32::MAX);
        assert_eq!(host_mask(96), u32::MAX);
    }
}

//! What every command starts from: the output format, the status file (if
//! xlbd wrote one), and where the pins and the control socket are.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};

use crate::config::{DEFAULT_CONTROL_SOCKET, DEFAULT_PIN_PATH};
use crate::daemon::DaemonStatus;
use crate::daemon::view::VipView;
use crate::dataplane::{Maps, PinDir};

use super::{Cli, Format};

/// The resolved global options.
#[derive(Debug)]
pub struct Context {
    /// Table or JSON.
    pub format: Format,
    /// xlbd's status, when its file could be read.
    pub status: Option<DaemonStatus>,
    /// Where the maps are pinned.
    pub pins: PinDir,
    /// xlbd's control socket.
    pub socket: PathBuf,
}

impl Context {
    /// Resolves the options: flags first, then the status file, then the
    /// defaults.
    pub fn new(cli: &Cli) -> Self {
        let status = DaemonStatus::read(&cli.status_file).ok();
        let pin_path = cli
            .pin_path
            .clone()
            .or_else(|| status.as_ref().map(|s| s.pin_path.clone()))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PIN_PATH));
        let socket = cli
            .socket
            .clone()
            .or_else(|| status.as_ref().and_then(|s| s.control_socket.clone()))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET));
        Self {
            format: cli.output,
            status,
            pins: PinDir::new(pin_path),
            socket,
        }
    }

    /// Opens the pinned maps.
    ///
    /// # Errors
    ///
    /// When they are not pinned there (no data plane) or not readable.
    pub fn maps(&self) -> anyhow::Result<Maps> {
        let root = self.pins.root();
        if !self.pins.map(lb_common::maps::VIPS).exists() {
            anyhow::bail!(
                "no xlb data plane is pinned under {} (xlbd never ran, or was detached; \
                 another pin directory is chosen with --pin-path)",
                root.display()
            );
        }
        Maps::open_pinned(&self.pins).with_context(|| {
            format!(
                "opening the maps pinned under {}",
                self.pins.root().display()
            )
        })
    }

    /// The VIPs the status file names.
    pub fn vip_views(&self) -> &[VipView] {
        self.status.as_ref().map_or(&[], |s| s.vips.as_slice())
    }

    /// The VIP id `spec` names: a VIP name (needs the status file),
    /// `ADDRESS:PORT[/PROTO]`, `ADDRESS` (when unique) or `#ID`.
    ///
    /// # Errors
    ///
    /// When no VIP, or more than one, matches.
    pub fn resolve_vip(
        &self,
        spec: &str,
        services: &[super::model::Service],
    ) -> anyhow::Result<u32> {
        if let Some(id) = spec.strip_prefix('#') {
            return id.parse().with_context(|| format!("bad VIP id {spec}"));
        }
        let matches: Vec<u32> = services
            .iter()
            .filter(|s| vip_matches(s, spec))
            .map(|s| s.id)
            .collect();
        match matches.as_slice() {
            [id] => Ok(*id),
            [] => bail!("no VIP {spec}"),
            _ => bail!("VIP {spec} is ambiguous; add the port and protocol, as in 10.0.0.1:80/tcp"),
        }
    }
}

fn vip_matches(service: &super::model::Service, spec: &str) -> bool {
    if service.name.as_deref() == Some(spec) {
        return true;
    }
    let (spec, proto) = match spec.rsplit_once('/') {
        Some((rest, proto)) => (rest, Some(proto)),
        None => (spec, None),
    };
    if proto.is_some_and(|p| p != service.protocol) {
        return false;
    }
    if let Ok(addr) = spec.parse::<IpAddr>() {
        return addr == service.address;
    }
    match spec.parse::<std::net::SocketAddr>() {
        Ok(sa) => sa.ip() == service.address && sa.port() == service.port,
        Err(_) => false,
    }
}

//! `xlb_decap` from user space: load, attach, pin, configure, detach.
//!
//! A backend runs `xlb_decap` on the interface that faces the load
//! balancers. Attaching pins everything under one directory on bpffs, so the
//! program stays attached after the attaching process exits:
//!
//! | pin            | what                                   |
//! | -------------- | -------------------------------------- |
//! | `DECAP_ADDRS`  | the addresses decapsulated for          |
//! | `DECAP_STATS`  | per-CPU counters by [`DecapStat`]       |
//! | `prog`         | the program                             |
//! | `link`         | the XDP link holding it on the interface |
//!
//! Attaching again with the same directory only replaces the address set;
//! [`detach`] removes the pins, and the kernel detaches the program when the
//! link's last reference goes.

mod cli;
mod error;
mod program;

use std::{
    io,
    net::IpAddr,
    path::{Path, PathBuf},
};

use aya::{
    EbpfLoader,
    maps::{HashMap, Map, MapData, PerCpuArray},
    programs::{XdpMode, links::FdLink},
};
use lb_common::maps::{DECAP_ADDRS, DECAP_STATS};

pub use cli::{DecapArgs, decap};
pub use error::DecapError;
use error::{map_error, program_error};
pub use program::{Decap, DecapCounters, decap_key};
use program::{check_addrs, read_counters, write_addrs};

/// Directory under which [`default_pin_dir`] puts one directory per
/// interface.
pub const DEFAULT_PIN_ROOT: &str = "/sys/fs/bpf/xlb_decap";

/// Name of the program's pin inside a pin directory.
const PROG_PIN: &str = "prog";
/// Name of the XDP link's pin inside a pin directory.
const LINK_PIN: &str = "link";
/// Every pin an attachment leaves, removed in this order on detach.
const PINS: [&str; 4] = [LINK_PIN, PROG_PIN, DECAP_ADDRS, DECAP_STATS];

/// How the program is attached to the interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`): the default, and what veth and
    /// most NICs support.
    #[default]
    Native,
    /// In the stack after the skb is built (`XDP_FLAGS_SKB_MODE`): for
    /// drivers without XDP, slower.
    Generic,
}

impl AttachMode {
    fn xdp_mode(self) -> XdpMode {
        match self {
            AttachMode::Native => XdpMode::Driver,
            AttachMode::Generic => XdpMode::Skb,
        }
    }
}

/// The pin directory used for `iface` when none is given.
pub fn default_pin_dir(iface: &str) -> PathBuf {
    Path::new(DEFAULT_PIN_ROOT).join(iface)
}

/// What [`attach`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attached {
    /// Loaded, attached and pinned anew.
    New,
    /// Already attached under the pin directory: only the addresses changed.
    Adopted,
}

/// Attaches `xlb_decap` to `iface` to decapsulate packets for `addrs`,
/// pinned under `pin_dir`; if it is already attached there, replaces its
/// address set instead.
///
/// # Errors
///
/// Fails on an empty or too long address list, an unknown interface, a
/// program the kernel refuses, or a pin directory off bpffs. A failed fresh
/// attach removes what it pinned.
pub fn attach(
    iface: &str,
    addrs: &[IpAddr],
    pin_dir: &Path,
    mode: AttachMode,
) -> Result<Attached, DecapError> {
    check_addrs(addrs)?;
    if pin_dir.join(LINK_PIN).exists() {
        let mut map = open_pinned(pin_dir, DECAP_ADDRS)?;
        let mut map = HashMap::try_from(&mut map).map_err(map_error(DECAP_ADDRS))?;
        write_addrs(&mut map, addrs)?;
        tracing::info!(iface, pin_dir = %pin_dir.display(), ?addrs, "xlb_decap addresses updated");
        return Ok(Attached::Adopted);
    }

    std::fs::create_dir_all(pin_dir).map_err(io_error("creating", pin_dir))?;
    // Left by a half-finished attach: start from fresh maps.
    remove_pins(pin_dir)?;
    let result = attach_new(iface, addrs, pin_dir, mode);
    if result.is_err() {
        // Best effort: the error being returned matters more than these.
        let _ = remove_pins(pin_dir);
        let _ = std::fs::remove_dir(pin_dir);
    }
    result?;
    tracing::info!(iface, pin_dir = %pin_dir.display(), ?addrs, ?mode, "xlb_decap attached");
    Ok(Attached::New)
}

/// Loads with maps pinned under `pin_dir`, attaches, pins program and link.
fn attach_new(
    iface: &str,
    addrs: &[IpAddr],
    pin_dir: &Path,
    mode: AttachMode,
) -> Result<(), DecapError> {
    let ebpf = EbpfLoader::new()
        .map_pin_path(DECAP_ADDRS, pin_dir.join(DECAP_ADDRS))
        .map_pin_path(DECAP_STATS, pin_dir.join(DECAP_STATS))
        .load(crate::objects::XLB_DECAP)
        .map_err(DecapError::Load)?;
    let mut decap = Decap::from_ebpf(ebpf)?;
    decap.set_addrs(addrs)?;

    let program = decap.program_mut()?;
    let link_id = program
        .attach(iface, mode.xdp_mode())
        .map_err(program_error("attaching"))?;
    let link = program
        .take_link(link_id)
        .map_err(program_error("taking the link of"))?;
    let link = FdLink::try_from(link).map_err(|source| DecapError::Link {
        iface: iface.to_owned(),
        source,
    })?;
    let link_path = pin_dir.join(LINK_PIN);
    link.pin(&link_path).map_err(|source| DecapError::Pin {
        path: link_path,
        source,
    })?;
    let prog_path = pin_dir.join(PROG_PIN);
    program.pin(&prog_path).map_err(|source| DecapError::Pin {
        path: prog_path,
        source,
    })
}

/// Detaches the `xlb_decap` pinned under `pin_dir` and removes the pins and
/// the directory.
///
/// # Errors
///
/// Fails when nothing is attached there or a pin cannot be removed.
pub fn detach(pin_dir: &Path) -> Result<(), DecapError> {
    if !pin_dir.join(LINK_PIN).exists() {
        return Err(DecapError::NotAttached {
            path: pin_dir.to_owned(),
        });
    }
    remove_pins(pin_dir)?;
    std::fs::remove_dir(pin_dir).map_err(io_error("removing", pin_dir))?;
    tracing::info!(pin_dir = %pin_dir.display(), "xlb_decap detached");
    Ok(())
}

/// The counters of the `xlb_decap` pinned under `pin_dir`, summed over CPUs.
///
/// # Errors
///
/// Fails when nothing is pinned there.
pub fn stats(pin_dir: &Path) -> Result<DecapCounters, DecapError> {
    if !pin_dir.join(LINK_PIN).exists() {
        return Err(DecapError::NotAttached {
            path: pin_dir.to_owned(),
        });
    }
    let map = open_pinned(pin_dir, DECAP_STATS)?;
    let map = PerCpuArray::try_from(&map).map_err(map_error(DECAP_STATS))?;
    read_counters(&map)
}

fn open_pinned(pin_dir: &Path, name: &'static str) -> Result<Map, DecapError> {
    let data = MapData::from_pin(pin_dir.join(name)).map_err(map_error(name))?;
    Map::from_map_data(data).map_err(map_error(name))
}

/// Removes every pin of an attachment that exists under `pin_dir`.
fn remove_pins(pin_dir: &Path) -> Result<(), DecapError> {
    let link = pin_dir.join(LINK_PIN);
    crate::dataplane::pins::remove_link_pin(&link).map_err(io_error("detaching", &link))?;
    for name in PINS {
        let path = pin_dir.join(name);
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                return Err(io_error("removing", &path)(error));
            }
            _ => {}
        }
    }
    Ok(())
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DecapError {
    let path = path.to_owned();
    move |source| DecapError::Io { what, path, source }
}

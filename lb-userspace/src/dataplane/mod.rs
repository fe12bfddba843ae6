//! The data plane as xlbd owns it: loading `xlb` against maps pinned on
//! bpffs, attaching it through pinned links, adopting what an earlier xlbd
//! left, and writing the desired state into the maps.
//!
//! Nothing here detaches on drop: stopping xlbd leaves forwarding and the
//! tracked flows running. [`detach`] takes the data plane down on purpose.

mod apply;
mod attach;
mod batch;
#[cfg(test)]
mod consistency;
pub mod counters;
pub mod desired;
mod error;
pub mod from_config;
mod ids;
mod limits;
pub mod live;
pub mod maps;
mod netlink;
pub mod pins;
mod plan;
mod policy_plan;

use aya::Ebpf;
use aya::programs::Xdp;
use lb_common::maps::PROG_XLB;
use tracing::info;

pub use apply::{TableChurn, TableSwaps, slots_moved};
pub use attach::Attachment;
pub use desired::{AdminState, DesiredBackend, DesiredState, DesiredVip, Health};
pub use error::{DataplaneError, XdpAttachMode};
pub use limits::Limits;
pub use live::Live;
pub use maps::Maps;
pub use netlink::{AttachedXdp, attached_xdp};
pub use pins::PinDir;

/// A loaded `xlb` with its maps, attached or about to be.
pub struct Dataplane {
    pins: PinDir,
    _lock: pins::PinLock,
    ebpf: Ebpf,
    maps: Maps,
    live: Live,
    attachments: Vec<Attachment>,
    /// Table swaps by VIP since this process opened the maps.
    churn: TableChurn,
    // Whether the maps were pinned before `open`.
    adopted: bool,
}

impl Dataplane {
    /// Loads `object` (the `xlb` ELF) with its maps opened from the pins in
    /// `pins`, or created and pinned there, FLOWS sized `flow_capacity`
    /// and the id-indexed maps for `limits` (pinned maps keep their sizes),
    /// and reads back what the maps hold. Attaches nothing yet.
    ///
    /// # Errors
    ///
    /// When bpffs is not there, another xlbd holds the pins, pinned maps
    /// are incompatible, or the verifier refuses the program.
    pub fn open(
        pins: PinDir,
        object: &[u8],
        flow_capacity: u32,
        limits: Limits,
    ) -> Result<Self, DataplaneError> {
        let adopting = pins.has_maps();
        pins.create()?;
        let lock = pins.lock()?;
        let mut ebpf = pins::load_object(&pins, object, flow_capacity, limits)?;
        let maps = Maps::take(&mut ebpf)?;
        let program: &mut Xdp = ebpf
            .program_mut(PROG_XLB)
            .ok_or(DataplaneError::MissingProgram { name: PROG_XLB })?
            .try_into()
            .map_err(DataplaneError::Program)?;
        program.load().map_err(DataplaneError::Program)?;

        let live = Live::read(&maps)?;
        info!(
            pin_path = %pins.root().display(),
            adopted = adopting,
            vips = live.vips.len(),
            backends = live.backends.len(),
            "maps opened"
        );
        Ok(Self {
            pins,
            _lock: lock,
            ebpf,
            maps,
            live,
            attachments: Vec::new(),
            churn: TableChurn::new(),
            adopted: adopting,
        })
    }

    /// True when `open` found maps pinned by an earlier xlbd; false when it
    /// created them, so a failed start may remove them again.
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    /// Attaches `xlb` to each interface, adopting links pinned by an
    /// earlier xlbd, and detaches it from interfaces that have a pinned
    /// link but are no longer listed.
    ///
    /// # Errors
    ///
    /// See [`DataplaneError::ForeignProgram`] and the other attach errors.
    /// Interfaces attached before the failing one stay attached.
    pub fn attach(&mut self, interfaces: &[(String, XdpAttachMode)]) -> Result<(), DataplaneError> {
        let program: &mut Xdp = self
            .ebpf
            .program_mut(PROG_XLB)
            .ok_or(DataplaneError::MissingProgram { name: PROG_XLB })?
            .try_into()
            .map_err(DataplaneError::Program)?;
        for (interface, mode) in interfaces {
            let attachment = attach::attach_or_adopt(program, &self.pins, interface, *mode)?;
            self.attachments.push(attachment);
        }

        let pinned = self
            .pins
            .pinned_links()
            .map_err(|source| DataplaneError::PinDir {
                path: self.pins.root().to_owned(),
                source,
            })?;
        for interface in pinned {
            if !interfaces.iter().any(|(name, _)| *name == interface) {
                attach::unpin_link(&self.pins, &interface)?;
            }
        }
        Ok(())
    }

    /// Makes the maps hold `desired`; returns the number of changes
    /// written, 0 when nothing differed.
    ///
    /// # Errors
    ///
    /// See [`apply::apply`]: on a planning error nothing is written.
    pub fn apply(
        &mut self,
        desired: &DesiredState,
        health: &Health,
    ) -> Result<usize, DataplaneError> {
        apply::apply(
            &mut self.maps,
            &mut self.live,
            desired,
            health,
            &mut self.churn,
        )
    }

    /// Maglev table swaps by VIP name since this process opened the maps.
    pub fn churn(&self) -> &TableChurn {
        &self.churn
    }

    /// The maps, for reading counters and flows.
    pub fn maps(&self) -> &Maps {
        &self.maps
    }

    /// What xlbd believes the maps hold.
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// The interfaces `xlb` is attached to.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    /// Where the pins are.
    pub fn pins(&self) -> &PinDir {
        &self.pins
    }
}

/// Takes the data plane down: removes the link pins (the programs detach)
/// and the map pins under `pins`. Nothing to remove is not an error.
///
/// # Errors
///
/// [`DataplaneError::Busy`] while an xlbd runs on `pins`, or when a pin
/// cannot be removed.
pub fn detach(pins: &PinDir) -> Result<(), DataplaneError> {
    // A running xlbd holds its links open, so removing the pins would not
    // detach anything: refuse instead.
    let _lock = match pins.lock() {
        Err(DataplaneError::PinDir { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            None
        }
        lock => Some(lock?),
    };
    let interfaces = pins.pinned_links().unwrap_or_default();
    pins::remove_all(pins).map_err(|source| DataplaneError::PinDir {
        path: pins.root().to_owned(),
        source,
    })?;
    info!(pin_path = %pins.root().display(), ?interfaces, "data plane detached, pins removed");
    Ok(())
}

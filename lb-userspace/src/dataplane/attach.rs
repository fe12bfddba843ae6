//! Attaching `xlb` to interfaces through pinned XDP links, and adopting the
//! links a previous xlbd left.
//!
//! A link pinned at `link_<interface>` is ours. On start xlbd replaces the
//! program behind that link with the one it just loaded (`bpf_link_update`,
//! atomic: every packet sees the old or the new program), so an upgrade
//! takes effect without a moment unattached and without a second program.
//! An interface with an XDP program and no link of ours is refused.

use std::ffi::CString;

use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::xdp::XdpLink;
use aya::programs::{ProgramError, Xdp, XdpMode};
use tracing::{info, warn};

use super::netlink::attached_xdp;
use super::pins::PinDir;
use super::{DataplaneError, XdpAttachMode};

/// One interface `xlb` runs on, with the link that keeps it there.
#[derive(Debug)]
pub struct Attachment {
    /// Interface name.
    pub interface: String,
    /// Kernel id of the program now attached.
    pub prog_id: u32,
    /// The link pinned by this or an earlier xlbd; closing it does not
    /// detach (the pin holds it).
    pub link: FdLink,
    /// The program the link ran before this xlbd replaced it, when adopted.
    pub replaced_prog_id: Option<u32>,
}

/// Attaches `program` (loaded) to `interface` in `mode`, or adopts the link
/// pinned there by an earlier xlbd and moves it onto `program`.
///
/// # Errors
///
/// [`DataplaneError::ForeignProgram`] when the interface runs an XDP
/// program that is not behind a link of ours, [`DataplaneError::ModeChanged`]
/// when our link runs in the other mode, and attach or pin failures.
pub fn attach_or_adopt(
    program: &mut Xdp,
    pins: &PinDir,
    interface: &str,
    mode: XdpAttachMode,
) -> Result<Attachment, DataplaneError> {
    let if_index = if_index(interface)?;
    let current = attached_xdp(if_index).map_err(|source| DataplaneError::Netlink {
        interface: interface.to_owned(),
        source,
    })?;
    let pin = pins.link(interface);

    if pin.exists() {
        if let Some(current) = current
            && current.generic != (mode == XdpAttachMode::Generic)
        {
            return Err(DataplaneError::ModeChanged {
                interface: interface.to_owned(),
                wanted: mode,
            });
        }
        match adopt(program, &pin, interface)? {
            Some(attachment) => return Ok(attachment),
            None => warn!(interface, "pinned link no longer attached; attaching anew"),
        }
    } else if let Some(current) = current {
        return Err(DataplaneError::ForeignProgram {
            interface: interface.to_owned(),
            prog_id: current.prog_id,
        });
    }

    let link_id = program
        .attach_to_if_index(if_index, mode.xdp_mode())
        .map_err(|source| attach_error(interface, source))?;
    let link = program
        .take_link(link_id)
        .map_err(|source| attach_error(interface, source))?;
    let link = FdLink::try_from(link).map_err(|_| DataplaneError::NoLinkSupport {
        interface: interface.to_owned(),
    })?;
    let prog_id = link_prog_id(&link, interface)?;
    let pinned = link.pin(&pin).map_err(|source| DataplaneError::PinLink {
        path: pin.clone(),
        source,
    })?;
    info!(interface, %mode, prog_id, "attached");
    Ok(Attachment {
        interface: interface.to_owned(),
        prog_id,
        link: pinned.into(),
        replaced_prog_id: None,
    })
}

/// Moves the link pinned at `pin` onto `program`. Returns `None`, after
/// removing the stale pin, when the link no longer has an interface (the
/// interface was deleted and made again).
fn adopt(
    program: &mut Xdp,
    pin: &std::path::Path,
    interface: &str,
) -> Result<Option<Attachment>, DataplaneError> {
    let pinned = PinnedLink::from_pin(pin).map_err(|source| DataplaneError::AdoptLink {
        path: pin.to_owned(),
        source,
    })?;
    let old = FdLink::from(pinned);
    let old_prog_id = link_prog_id(&old, interface)?;
    let xdp_link = XdpLink::try_from(old).map_err(|source| DataplaneError::AdoptLink {
        path: pin.to_owned(),
        source,
    })?;

    let link_id = match program.attach_to_link(xdp_link) {
        Ok(link_id) => link_id,
        Err(ProgramError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOLINK) => {
            let _ = std::fs::remove_file(pin);
            return Ok(None);
        }
        Err(source) => return Err(attach_error(interface, source)),
    };
    let link = program
        .take_link(link_id)
        .map_err(|source| attach_error(interface, source))?;
    let link = FdLink::try_from(link).map_err(|_| DataplaneError::NoLinkSupport {
        interface: interface.to_owned(),
    })?;
    let prog_id = link_prog_id(&link, interface)?;
    info!(
        interface,
        old_prog_id, prog_id, "adopted pinned link, program replaced"
    );
    Ok(Some(Attachment {
        interface: interface.to_owned(),
        prog_id,
        link,
        replaced_prog_id: Some(old_prog_id),
    }))
}

/// Detaches `xlb` from an interface and removes its link pin.
///
/// # Errors
///
/// When the pin exists and cannot be detached or removed.
pub fn unpin_link(pins: &PinDir, interface: &str) -> Result<(), DataplaneError> {
    let path = pins.link(interface);
    super::pins::remove_link_pin(&path)
        .map_err(|source| DataplaneError::PinDir { path, source })?;
    info!(interface, "detached from interface no longer in the config");
    Ok(())
}

fn link_prog_id(link: &FdLink, interface: &str) -> Result<u32, DataplaneError> {
    link.info()
        .map(|info| info.program_id())
        .map_err(|source| DataplaneError::LinkInfo {
            interface: interface.to_owned(),
            source,
        })
}

fn if_index(interface: &str) -> Result<u32, DataplaneError> {
    let unknown = || DataplaneError::UnknownInterface {
        interface: interface.to_owned(),
    };
    let name = CString::new(interface).map_err(|_| unknown())?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(unknown());
    }
    Ok(index)
}

fn attach_error(interface: &str, source: ProgramError) -> DataplaneError {
    DataplaneError::Attach {
        interface: interface.to_owned(),
        source,
    }
}

impl XdpAttachMode {
    /// The aya flag for this mode; never `Default`, so the kernel cannot
    /// fall back to generic mode behind the operator's back.
    pub fn xdp_mode(self) -> XdpMode {
        match self {
            XdpAttachMode::Native => XdpMode::Driver,
            XdpAttachMode::Generic => XdpMode::Skb,
        }
    }
}

//! The daemon's side of VIP announcement: keep the announce table in step
//! with what the data plane can serve, and empty it when serving stops.

use std::collections::BTreeSet;
use std::net::IpAddr;

use tracing::{info, warn};

use super::Daemon;
use crate::announce::{Announcer, servable};
use crate::config::Announce;
use crate::dataplane::{DesiredState, Health, attached_xdp};

impl Daemon {
    /// Announces the VIPs `steered` can serve with `health`, unless the
    /// data plane is gone.
    pub(super) fn announce(&mut self, steered: &DesiredState, health: &Health) {
        self.servable = servable(steered, health);
        self.sync_announced();
    }

    fn sync_announced(&mut self) {
        let wanted = if self.dataplane_lost {
            BTreeSet::new()
        } else {
            self.servable.clone()
        };
        if let Some(announcer) = &mut self.announcer {
            announcer.sync(&wanted);
        }
    }

    /// Follows a change of the `announce` section: withdraws everything
    /// from the old table and starts over in the new one.
    pub(super) fn update_announce(&mut self, config: Option<&Announce>) {
        let table = self.announcer.as_ref().map(Announcer::table);
        if table == config.map(|c| c.table) {
            return;
        }
        if let Some(mut old) = self.announcer.take() {
            old.withdraw_all();
        }
        self.announcer = config.map(Announcer::new);
        self.sync_announced();
    }

    /// Checks that every interface still runs the program this daemon
    /// attached; withdraws all VIPs while one does not (someone ran
    /// `ip link set dev IF xdp off`, or the interface went away), and
    /// announces them again once it does.
    pub fn check_dataplane(&mut self) {
        let lost: Vec<&str> = self
            .dataplane
            .attachments()
            .iter()
            .filter(|a| !runs(&a.interface, a.prog_id))
            .map(|a| a.interface.as_str())
            .collect();
        let now_lost = !lost.is_empty();
        if now_lost != self.dataplane_lost {
            if now_lost {
                warn!(interfaces = ?lost, "the data plane is gone; withdrawing all vips");
            } else {
                info!("the data plane is back; announcing the vips again");
            }
            self.dataplane_lost = now_lost;
            self.sync_announced();
        }
    }

    /// Withdraws every VIP: the daemon stops serving.
    pub(super) fn withdraw_all(&mut self) {
        if let Some(announcer) = &mut self.announcer {
            announcer.withdraw_all();
        }
    }

    /// The VIPs announced now, for the status.
    pub fn announced(&self) -> Vec<IpAddr> {
        self.announcer
            .as_ref()
            .map(|a| a.announced().iter().copied().collect())
            .unwrap_or_default()
    }
}

/// Whether `interface` runs program `prog_id`.
fn runs(interface: &str, prog_id: u32) -> bool {
    let Ok(name) = std::ffi::CString::new(interface) else {
        return false;
    };
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return false;
    }
    // An error reading it is not proof of loss; only a different answer is.
    match attached_xdp(index) {
        Ok(attached) => attached.is_some_and(|xdp| xdp.prog_id == prog_id),
        Err(_) => true,
    }
}

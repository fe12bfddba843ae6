//! Readiness and reload notifications to systemd (`Type=notify`). Outside
//! systemd (`NOTIFY_SOCKET` unset) every call does nothing.

use sd_notify::NotifyState;
use tracing::debug;

/// Tells systemd the service is up: the program is attached and the maps
/// are written.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// Tells systemd a reload started; [`ready`] ends it.
pub fn reloading() {
    // systemd 253+ wants the monotonic time with RELOADING=1.
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Tells systemd the service is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Sets the one-line status `systemctl status` shows.
pub fn status(line: &str) {
    send(&[NotifyState::Status(line)]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(false, states) {
        debug!(%error, "sd_notify failed");
    }
}

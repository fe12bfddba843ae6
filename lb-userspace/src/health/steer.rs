//! The view applied to the data plane's desired state: the one place the
//! health rules meet [`DesiredState`].

use std::time::Instant;

use crate::dataplane::{AdminState, DesiredState, Health};

use super::policy::{PoolMember, effective_weight, usable_backends};
use super::view::HealthView;

/// Applies `view` at `now` to `desired`: lowers the weights of backends
/// under slow start, and returns the backends to treat as down (the ones
/// down by their checks, except those panic mode puts back), to pass to
/// the data plane's `apply` along with `desired`.
pub fn steer(view: &HealthView, desired: &mut DesiredState, now: Instant) -> Health {
    let mut health = Health::default();
    for vip in &mut desired.vips {
        let members: Vec<PoolMember> = vip
            .backends
            .iter()
            .map(|backend| PoolMember {
                addr: backend.addr,
                eligible: backend.state == AdminState::Ready && backend.weight > 0,
            })
            .collect();
        let usable = usable_backends(view, &vip.pool, &members);

        for backend in &mut vip.backends {
            let up = view.is_up(&vip.pool, backend.addr) || usable.backends.contains(&backend.addr);
            health.set(&vip.pool, backend.addr, up);
            backend.weight = effective_weight(view, &vip.pool, backend.addr, backend.weight, now);
        }
    }
    health
}

//! The standby actuator: which of a pool's `standby: true` backends are in
//! service, joining, draining or released, and how that bends the data
//! plane's desired state.
//!
//! Scale-out brings released backends in (in config order) with slow
//! start, after cancelling any drain first: a draining backend still has
//! its flows and its warm caches. Scale-in drains the backends that joined
//! last (weight 0, tracked flows continue) and releases each once no flow
//! of it was seen within `drain_idle`, or after `drain_timeout` anyway. The
//! pool's other backends are never touched.
//!
//! Limitation: the phases live in xlbd's memory, so a restarted xlbd starts
//! with every standby backend released and takes the joined ones out of
//! the maps (their flows move) until its autoscaler brings them back.
//! Keeping the phases in the status file and reading them at start, as the
//! operator overrides would want too, would fix that.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::dataplane::{AdminState, DesiredState};
use crate::health::ramp_weight;

/// Where one standby backend stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Out of the pool: not in the maps.
    Released,
    /// In the pool, ramping up its weight since `since`.
    Joining {
        /// When it was brought in.
        since: Instant,
    },
    /// In the pool at its full weight.
    Active,
    /// Taking no new flows since `since`; its tracked flows continue.
    Draining {
        /// When the drain began.
        since: Instant,
    },
}

/// A [`Phase`] without its times, for status and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseName {
    /// See [`Phase::Released`].
    Released,
    /// See [`Phase::Joining`].
    Joining,
    /// See [`Phase::Active`].
    Active,
    /// See [`Phase::Draining`].
    Draining,
}

impl Phase {
    /// The phase's name.
    pub fn name(self) -> PhaseName {
        match self {
            Phase::Released => PhaseName::Released,
            Phase::Joining { .. } => PhaseName::Joining,
            Phase::Active => PhaseName::Active,
            Phase::Draining { .. } => PhaseName::Draining,
        }
    }

    fn in_service(self) -> bool {
        matches!(self, Phase::Joining { .. } | Phase::Active)
    }
}

/// A move of one standby backend, to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    /// The backend.
    pub backend: IpAddr,
    /// Its phase before.
    pub from: PhaseName,
    /// Its phase after.
    pub to: PhaseName,
    /// Why.
    pub reason: String,
}

/// The standby backends of one pool.
#[derive(Clone, Debug)]
pub struct StandbyPool {
    /// Backends of the pool that are not standby: always in service.
    base: u32,
    /// Standby backends in config order, with their phase.
    members: Vec<(IpAddr, Phase)>,
    slow_start: Duration,
    drain_timeout: Duration,
    drain_idle: Duration,
}

impl StandbyPool {
    /// A pool with `base` fixed backends and the `standby` ones (in config
    /// order), all released.
    pub fn new(base: u32, standby: &[IpAddr], timings: (Duration, Duration, Duration)) -> Self {
        let (slow_start, drain_timeout, drain_idle) = timings;
        Self {
            base,
            members: standby.iter().map(|&a| (a, Phase::Released)).collect(),
            slow_start,
            drain_timeout,
            drain_idle,
        }
    }

    /// Keeps the phases of `other`'s members that this pool also has (a
    /// reload that leaves a backend in place leaves it where it was).
    pub fn carry_over(&mut self, other: &StandbyPool) {
        for (addr, phase) in &mut self.members {
            if let Some((_, old)) = other.members.iter().find(|(a, _)| a == addr) {
                *phase = *old;
            }
        }
    }

    /// Backends in service: the fixed ones and the joining and active
    /// standby ones.
    pub fn in_service(&self) -> u32 {
        let standby = self.members.iter().filter(|(_, p)| p.in_service()).count();
        self.base + u32::try_from(standby).unwrap_or(u32::MAX)
    }

    /// Every standby backend with its phase, in config order.
    pub fn members(&self) -> impl Iterator<Item = (IpAddr, PhaseName)> + '_ {
        self.members.iter().map(|(a, p)| (*a, p.name()))
    }

    /// The flow-idle time after which a draining backend counts as empty.
    pub fn drain_idle(&self) -> Duration {
        self.drain_idle
    }

    /// Whether a backend drains, so its flows need counting.
    pub fn draining(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let draining =
            |(a, p): &&(IpAddr, Phase)| matches!(p, Phase::Draining { .. }).then_some(*a);
        self.members.iter().filter_map(move |m| draining(&m))
    }

    /// Brings backends in or drains them until `desired` are in service
    /// (as near as the standby backends allow), at `now`.
    pub fn scale_to(&mut self, desired: u32, now: Instant) -> Vec<Move> {
        let mut moves = Vec::new();
        let mut current = self.in_service();
        // Out: cancel drains first (newest first), then bring in released.
        for wanted in [PhaseName::Draining, PhaseName::Released] {
            let order: Vec<usize> = match wanted {
                PhaseName::Draining => (0..self.members.len()).rev().collect(),
                _ => (0..self.members.len()).collect(),
            };
            for i in order {
                if current >= desired || self.members[i].1.name() != wanted {
                    continue;
                }
                let to = match wanted {
                    PhaseName::Draining => Phase::Active,
                    _ => Phase::Joining { since: now },
                };
                moves.push(self.set(i, to, "scale out"));
                current += 1;
            }
        }
        // In: drain the last in service first.
        for i in (0..self.members.len()).rev() {
            if current <= desired || !self.members[i].1.in_service() {
                continue;
            }
            moves.push(self.set(i, Phase::Draining { since: now }, "scale in"));
            current -= 1;
        }
        moves
    }

    /// Advances the phases at `now`: joiners whose ramp is over become
    /// active; a draining backend is released once `flows` (its tracked
    /// flows seen within `drain_idle`; `None` when unknown) is 0, or when
    /// its drain timeout passed.
    pub fn advance(&mut self, now: Instant, flows: impl Fn(IpAddr) -> Option<usize>) -> Vec<Move> {
        let mut moves = Vec::new();
        for i in 0..self.members.len() {
            let (addr, phase) = self.members[i];
            match phase {
                Phase::Joining { since }
                    if now.saturating_duration_since(since) >= self.slow_start =>
                {
                    moves.push(self.set(i, Phase::Active, "slow start over"));
                }
                Phase::Draining { since } => {
                    let waited = now.saturating_duration_since(since);
                    if flows(addr) == Some(0) {
                        let reason = format!("no flow seen for {:?}", self.drain_idle);
                        moves.push(self.set(i, Phase::Released, &reason));
                    } else if waited >= self.drain_timeout {
                        let reason = format!("drain timeout of {:?} passed", self.drain_timeout);
                        moves.push(self.set(i, Phase::Released, &reason));
                    }
                }
                _ => {}
            }
        }
        moves
    }

    /// The next moment a joiner's weight steps up, if one ramps.
    pub fn next_ramp_step(&self, now: Instant) -> Option<Instant> {
        let ramps = self.members.iter().filter_map(|(_, phase)| match phase {
            Phase::Joining { since } => crate::health::next_ramp_step(*since, self.slow_start, now)
                .or(Some(*since + self.slow_start)),
            _ => None,
        });
        ramps.filter(|at| *at > now).min()
    }

    /// Applies the phases to the backends of `pool` in `desired`: released
    /// backends leave, draining ones drain, joining ones ramp.
    pub fn steer(&self, pool: &str, desired: &mut DesiredState, now: Instant) {
        let phases: BTreeMap<IpAddr, Phase> = self.members.iter().copied().collect();
        for vip in desired.vips.iter_mut().filter(|v| v.pool == pool) {
            vip.backends
                .retain(|b| phases.get(&b.addr) != Some(&Phase::Released));
            for backend in &mut vip.backends {
                match phases.get(&backend.addr) {
                    Some(Phase::Draining { .. }) => backend.state = AdminState::Drain,
                    Some(Phase::Joining { since }) => {
                        backend.weight = ramp_weight(backend.weight, *since, self.slow_start, now);
                    }
                    _ => {}
                }
            }
        }
    }

    fn set(&mut self, i: usize, to: Phase, reason: &str) -> Move {
        let (backend, from) = self.members[i];
        self.members[i].1 = to;
        Move {
            backend,
            from: from.name(),
            to: to.name(),
            reason: reason.to_owned(),
        }
    }
}

//! What the daemon does for the control socket and its readers: operator
//! overrides applied through the same path as the config, and the snapshot
//! published to the status file and the metrics.

use std::net::IpAddr;
use std::ops::ControlFlow;

use tracing::{info, warn};

use super::Daemon;
use crate::config::Share;
use crate::daemon::canary::{CanaryReading, CanaryRow, percent, rollback_reason};
use crate::daemon::control::{Incoming, Request, Response};
use crate::daemon::overrides::Override;
use crate::daemon::status::{DaemonStatus, HealthTransitions, InterfaceView};
use crate::daemon::view;
use crate::dataplane::DesiredState;
use crate::dataplane::pins;

impl Daemon {
    /// Makes `desired` (fresh from the config) the running state, with the
    /// operator's overrides laid over it; drops overrides of backends the
    /// config no longer has.
    ///
    /// # Errors
    ///
    /// When the data plane refuses it; nothing changes then.
    pub(super) fn apply_config(&mut self, desired: DesiredState) -> anyhow::Result<usize> {
        let changes = self.apply_steered(&desired)?;
        for (pool, backend) in self.overrides.prune(&desired) {
            info!(pool, %backend, "override dropped: backend no longer in the config");
        }
        self.desired = desired;
        Ok(changes)
    }

    /// Writes the running config, overrides and health into the maps again,
    /// and republishes the status. Call it after a health change.
    ///
    /// # Errors
    ///
    /// When the data plane refuses the write.
    pub fn reapply(&mut self) -> anyhow::Result<usize> {
        let desired = self.desired.clone();
        let changes = self.apply_steered(&desired)?;
        self.publish();
        Ok(changes)
    }

    /// Writes `desired` with the overrides laid over it, the health view
    /// applied (down backends out, slow-start weights, panic mode), then
    /// the load factors.
    fn apply_steered(&mut self, desired: &DesiredState) -> anyhow::Result<usize> {
        let now = std::time::Instant::now();
        self.roll_back_canaries(desired);
        let mut steered = self.overrides.overlay(desired);
        self.autoscaler.steer(&mut steered, now);
        let view = self.checker.view();
        self.health = crate::health::steer(&view, &mut steered, now);
        let load = self.load.view();
        crate::load::steer(&load, &mut steered);
        crate::load::steer_cost(&self.cost_aware, &load, &self.health, &mut steered);
        let changes = self.dataplane.apply(&steered, &self.health)?;
        let health = self.health.clone();
        self.announce(&steered, &health);
        Ok(changes)
    }

    /// Sets to 0 the share of every canary whose pool crosses a rollback
    /// threshold of its VIP, logging and counting each rollback.
    fn roll_back_canaries(&mut self, desired: &DesiredState) {
        let view = self.checker.view();
        let load = self.load.view();
        for (vip, policy) in &desired.policy {
            let Some(canary) = &policy.canary else {
                continue;
            };
            let Some(rollback) = &canary.rollback else {
                continue;
            };
            let share = self.overrides.canary_share(vip).unwrap_or(canary.share);
            if share.is_zero() {
                continue;
            }
            let table = desired
                .vips
                .iter()
                .find(|t| t.pool == canary.pool && t.owner.as_deref() == Some(vip.as_str()));
            let backends = table.map_or(&[][..], |t| t.backends.as_slice());
            let reading = CanaryReading {
                down: backends
                    .iter()
                    .filter(|b| !view.is_up(&canary.pool, b.addr))
                    .count(),
                backends: backends.len(),
                load: load.pool_load(&canary.pool),
            };
            let Some(reason) = rollback_reason(rollback, &reading) else {
                continue;
            };
            warn!(
                vip,
                pool = canary.pool,
                share_bp = share.basis_points(),
                reason,
                "canary rolled back to 0 %; `xlbctl vip split` sets a share again"
            );
            self.overrides.set_canary_share(vip, Some(Share::ZERO));
            *self.rollbacks.total.entry(vip.clone()).or_default() += 1;
            self.rollbacks.last.insert(vip.clone(), reason);
        }
    }

    /// Each VIP's canary as the status shows it.
    fn canary_rows(&self) -> Vec<CanaryRow> {
        let policies = self.desired.policy.iter();
        let with_canary = policies.filter_map(|(vip, p)| Some((vip, p.canary.as_ref()?)));
        with_canary
            .map(|(vip, canary)| {
                let operator = self.overrides.canary_share(vip);
                CanaryRow {
                    vip: vip.clone(),
                    pool: canary.pool.clone(),
                    configured_bp: canary.share.basis_points(),
                    operator_bp: operator.map(Share::basis_points),
                    effective_bp: operator.unwrap_or(canary.share).basis_points(),
                    rollbacks_total: self.rollbacks.total.get(vip).copied().unwrap_or(0),
                    last_rollback: self.rollbacks.last.get(vip).cloned(),
                }
            })
            .collect()
    }

    /// Sets (`Some`) or resets (`None`) the canary share of `vip`, and
    /// applies it.
    fn split_vip(&mut self, vip: &str, share: Option<Share>) -> Response {
        let canary = self.desired.policy.get(vip).and_then(|p| p.canary.as_ref());
        let Some(canary) = canary else {
            let known = self
                .desired
                .vips
                .iter()
                .any(|v| v.name == vip && v.owner.is_none());
            return Response::failed(if known {
                format!("VIP {vip} has no canary in the config")
            } else {
                format!("no VIP named {vip}")
            });
        };
        let configured = canary.share;
        let before = self.overrides.clone();
        self.overrides.set_canary_share(vip, share);
        let effective = share.unwrap_or(configured);
        match self.reapply() {
            Ok(changes) => Response::done(
                format!(
                    "VIP {vip} canary {} at {} (config {})",
                    canary_pool_name(&self.desired, vip),
                    percent(effective),
                    percent(configured)
                ),
                changes,
            ),
            Err(e) => {
                self.overrides = before;
                Response::failed(format!("{e:#}"))
            }
        }
    }

    /// The status as the status file and the metrics show it.
    pub fn snapshot(&self) -> DaemonStatus {
        let mut status = self.status.clone();
        status.health_transitions = health_transitions(&self.checker.metrics().snapshot());
        status.load = crate::daemon::status::load_rows(&self.load.metrics().snapshot());
        status.tables = self.dataplane.churn().clone();
        status.autoscale = self.autoscaler.rows();
        status.canaries = self.canary_rows();
        // Standby phases show in the effective state and weight; `weight`
        // stays the config's.
        let mut shown = self.desired.clone();
        self.autoscaler.steer(&mut shown, std::time::Instant::now());
        status.vips = view::build(&shown, &self.overrides, self.dataplane.live(), &self.health);
        for vip in &mut status.vips {
            let Some(desired) = self.desired.vips.iter().find(|v| v.name == vip.name) else {
                continue;
            };
            for backend in &mut vip.backends {
                let config = desired.backends.iter().find(|b| b.addr == backend.address);
                backend.weight = config.map_or(backend.weight, |b| b.weight);
            }
        }
        status.interfaces = self
            .dataplane
            .attachments()
            .iter()
            .map(|a| InterfaceView {
                name: a.interface.clone(),
                prog_id: a.prog_id,
                mode: self
                    .startup
                    .interfaces
                    .iter()
                    .find(|(name, _)| *name == a.interface)
                    .map(|(_, mode)| mode.to_string())
                    .unwrap_or_default(),
            })
            .collect();
        status
    }

    /// Carries out one control request and answers it. Breaks when the
    /// daemon must stop (after `detach`).
    pub fn handle_control(&mut self, incoming: Incoming) -> ControlFlow<()> {
        let peer = incoming.peer;
        let (response, flow) = match &incoming.request {
            Request::SetBackend {
                backend,
                pool,
                state,
                weight,
            } => {
                let change = Override {
                    state: *state,
                    weight: *weight,
                };
                let response = self.set_backend(*backend, pool.as_deref(), Some(&change));
                if response.ok {
                    info!(uid = peer.uid, pid = ?peer.pid, %backend, ?pool, ?state, ?weight,
                        changes = response.changes, "operator override set");
                }
                (response, ControlFlow::Continue(()))
            }
            Request::ResetBackend { backend, pool } => {
                let response = self.set_backend(*backend, pool.as_deref(), None);
                if response.ok {
                    info!(uid = peer.uid, pid = ?peer.pid, %backend, ?pool,
                        "operator override cleared");
                }
                (response, ControlFlow::Continue(()))
            }
            Request::SplitVip {
                vip,
                canary_basis_points,
            } => {
                let share = canary_basis_points.and_then(Share::from_basis_points);
                let response = match (canary_basis_points, share) {
                    (Some(bp), None) => {
                        Response::failed(format!("{bp} basis points is above 100 %"))
                    }
                    _ => self.split_vip(vip, share),
                };
                if response.ok {
                    info!(uid = peer.uid, pid = ?peer.pid, vip, share_bp = ?canary_basis_points,
                        "operator canary share set");
                }
                (response, ControlFlow::Continue(()))
            }
            Request::Reload => {
                info!(uid = peer.uid, pid = ?peer.pid, "reload asked on the control socket");
                let outcome = self.reload();
                let response = match outcome.error {
                    None if !outcome.restart_needed.is_empty() => Response::done(
                        format!(
                            "reloaded; {} only change on restart, the running values stay",
                            outcome.restart_needed.join(", ")
                        ),
                        outcome.changes,
                    ),
                    None => Response::done("reloaded", outcome.changes),
                    Some(error) => Response::failed(format!("reload failed: {error}")),
                };
                (response, ControlFlow::Continue(()))
            }
            Request::AutoscalerStatus => {
                let mut response = Response::done("autoscaler status", 0);
                response.autoscaler = self.autoscaler.rows();
                (response, ControlFlow::Continue(()))
            }
            Request::Detach => {
                info!(uid = peer.uid, pid = ?peer.pid, "detach asked on the control socket");
                match pins::remove_all(self.dataplane.pins()) {
                    Ok(()) => (
                        Response::done("pins removed; xlbd exits and the program detaches", 0),
                        ControlFlow::Break(()),
                    ),
                    Err(e) => (
                        Response::failed(format!("removing the pins: {e}")),
                        ControlFlow::Continue(()),
                    ),
                }
            }
        };
        incoming.reply(response);
        flow
    }

    /// Sets (`Some`) or clears (`None`) the override of `backend` in
    /// `pool`, or in every pool that has it, and applies the result.
    fn set_backend(
        &mut self,
        backend: IpAddr,
        pool: Option<&str>,
        change: Option<&Override>,
    ) -> Response {
        let mut pools: Vec<String> = self
            .desired
            .vips
            .iter()
            .filter(|vip| pool.is_none_or(|p| p == vip.pool))
            .filter(|vip| vip.backends.iter().any(|b| b.addr == backend))
            .map(|vip| vip.pool.clone())
            .collect();
        pools.sort();
        pools.dedup();
        if pools.is_empty() {
            let scope = pool.map_or("any pool".to_owned(), |p| format!("pool {p}"));
            return Response::failed(format!("backend {backend} is not in {scope}"));
        }

        let before = self.overrides.clone();
        for pool in &pools {
            match change {
                Some(change) => self.overrides.set(pool, backend, change),
                None => {
                    self.overrides.clear(pool, backend);
                }
            }
        }
        match self.reapply() {
            Ok(changes) => {
                Response::done(format!("backend {backend} in {}", pools.join(",")), changes)
            }
            Err(e) => {
                warn!(%backend, error = format!("{e:#}"), "override refused by the data plane");
                self.overrides = before;
                Response::failed(format!("{e:#}"))
            }
        }
    }
}

/// The canary pool of `vip`'s policy.
fn canary_pool_name(desired: &DesiredState, vip: &str) -> String {
    let canary = desired.policy.get(vip).and_then(|p| p.canary.as_ref());
    canary.map(|c| c.pool.clone()).unwrap_or_default()
}

/// The checker's flip counts, one row per backend.
fn health_transitions(counts: &crate::health::HealthCounts) -> Vec<HealthTransitions> {
    let mut rows: std::collections::BTreeMap<(String, IpAddr), HealthTransitions> =
        std::collections::BTreeMap::new();
    for ((pool, backend, to), total) in &counts.transitions_total {
        let row = rows
            .entry((pool.clone(), *backend))
            .or_insert_with(|| HealthTransitions {
                pool: pool.clone(),
                backend: *backend,
                to_up_total: 0,
                to_down_total: 0,
            });
        match to {
            crate::health::HealthState::Up => row.to_up_total += total,
            crate::health::HealthState::Down => row.to_down_total += total,
        }
    }
    rows.into_values().collect()
}

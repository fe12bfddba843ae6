//! The running checker: one tokio task per checked (pool, backend), and the
//! state they share. Results go through [`Tracker`]s; a flip is logged,
//! counted and published as a new [`HealthView`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tracing::{info, trace, warn};

use crate::config::Config;

use super::metrics::HealthMetrics;
use super::policy::{PoolMember, usable_backends};
use super::probe::{ProbeFailure, ProbeOutcome, probe};
use super::targets::{CheckPlan, check_plans, pool_members};
use super::tracker::{HealthState, Tracker, Transition};
use super::view::{BackendHealth, HealthView, PoolPolicy};

/// A backend: (pool name, address).
type Key = (String, IpAddr);

/// Runs the health checks of a config and publishes what they find.
///
/// Backends start up, so a fresh daemon serves at once, except those named
/// to [`HealthChecker::with_known_down`], which need `rise` passing probes.
/// A backend added by a later config starts up too, ramping under slow
/// start. Dropping the checker stops its tasks.
#[derive(Debug)]
pub struct HealthChecker {
    shared: Arc<Shared>,
    tasks: BTreeMap<Key, Task>,
    next_generation: u64,
}

#[derive(Debug)]
struct Task {
    plan: CheckPlan,
    handle: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    view: watch::Sender<HealthView>,
    metrics: Arc<HealthMetrics>,
}

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<Key, Entry>,
    members: BTreeMap<String, Vec<PoolMember>>,
}

#[derive(Debug)]
struct Entry {
    tracker: Tracker,
    /// The task whose results count; a replaced task's late result does not.
    generation: Option<u64>,
    rise: u32,
    fall: u32,
}

impl HealthChecker {
    /// Starts checking every backend of `config`, all up at first.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, where its tasks cannot be spawned.
    pub fn new(config: &Config) -> Self {
        Self::with_known_down(config, &[])
    }

    /// Like [`HealthChecker::new`], but the backends in `down` (pool,
    /// address), known down before a restart, start down.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn with_known_down(config: &Config, down: &[(String, IpAddr)]) -> Self {
        let (view, _) = watch::channel(HealthView::default());
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            view,
            metrics: Arc::default(),
        });
        let mut checker = Self {
            shared,
            tasks: BTreeMap::new(),
            next_generation: 0,
        };
        checker.apply(config, Start::Fresh(down));
        checker
    }

    /// Takes a reloaded config: backends that stay keep their health (a
    /// down one stays down until its checks pass), new ones start up with a
    /// slow start, removed ones stop being checked.
    pub fn update_config(&mut self, config: &Config) {
        self.apply(config, Start::Reload);
    }

    /// A receiver of the view, which changes on every flip and reload.
    pub fn subscribe(&self) -> watch::Receiver<HealthView> {
        self.shared.view.subscribe()
    }

    /// The view now.
    pub fn view(&self) -> HealthView {
        self.shared.view.borrow().clone()
    }

    /// The counters, for the metrics exporter.
    pub fn metrics(&self) -> Arc<HealthMetrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// Makes `config` the checked one: drops backends it lacks, keeps or
    /// restarts the probing of those it keeps, adds the new ones, and
    /// publishes the view if it changed.
    fn apply(&mut self, config: &Config, start: Start<'_>) {
        let now = Instant::now();
        let plans = check_plans(config);
        let shared = Arc::clone(&self.shared);
        let mut state = shared.lock();
        let mut view = shared.view.borrow().clone();
        state.members = pool_members(config);
        view.pools = PoolPolicy::from_config(config);

        let removed: Vec<Key> = state
            .entries
            .keys()
            .filter(|key| !plans.contains_key(*key))
            .cloned()
            .collect();
        for key in removed {
            state.entries.remove(&key);
            view.backends.remove(&key);
            self.stop(&key);
        }

        for (key, plan) in plans {
            match state.entries.get_mut(&key) {
                Some(entry) => self.keep(entry, &key, plan.as_ref(), &mut view, now),
                None => {
                    let entry = self.add(&key, plan.as_ref(), &mut view, &start, now);
                    state.entries.insert(key, entry);
                }
            }
        }

        shared
            .metrics
            .retain_pools(|pool| config.pools.contains_key(pool));
        for pool in config.pools.keys() {
            check_panic(&view, &state, &shared.metrics, pool);
        }
        shared.view.send_if_modified(|current| {
            let changed = *current != view;
            *current = view;
            changed
        });
    }

    /// Carries a backend that stays over a new config: its health stays;
    /// its probing restarts if its check changed.
    fn keep(
        &mut self,
        entry: &mut Entry,
        key: &Key,
        plan: Option<&CheckPlan>,
        view: &mut HealthView,
        now: Instant,
    ) {
        if self.tasks.get(key).map(|task| &task.plan) == plan {
            return;
        }
        let newly_checked = plan.is_some() && !self.tasks.contains_key(key);
        self.stop(key);
        entry.tracker.reset_runs();
        entry.generation = plan.map(|plan| self.spawn(key, plan));
        (entry.rise, entry.fall) = plan.map_or((1, 1), |p| (p.rise, p.fall));

        let metrics = &self.shared.metrics;
        if plan.is_none()
            && let Some(t) = entry.tracker.force(HealthState::Up, "no longer checked")
        {
            record_transition(view, metrics, key, t, now);
        }
        if newly_checked && let Some(backend) = view.backends.get_mut(key) {
            backend.reason = "checked from now on".to_owned();
        }
    }

    /// Starts tracking (and probing) a backend seen for the first time.
    fn add(
        &mut self,
        key: &Key,
        plan: Option<&CheckPlan>,
        view: &mut HealthView,
        start: &Start<'_>,
        now: Instant,
    ) -> Entry {
        let (health, reason) = start.initial(key, plan.is_some());
        let ramp_from = match (start, health) {
            (Start::Reload, HealthState::Up) => Some(now),
            _ => None,
        };
        let backend = BackendHealth {
            state: health,
            since: now,
            reason: reason.to_owned(),
            ramp_from,
        };
        view.backends.insert(key.clone(), backend);
        Entry {
            tracker: Tracker::new(health),
            generation: plan.map(|plan| self.spawn(key, plan)),
            rise: plan.map_or(1, |p| p.rise),
            fall: plan.map_or(1, |p| p.fall),
        }
    }

    /// Starts probing `key` by `plan`; returns the task's generation.
    fn spawn(&mut self, key: &Key, plan: &CheckPlan) -> u64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        let probing = probe_loop(
            Arc::clone(&self.shared),
            key.clone(),
            generation,
            plan.clone(),
        );
        let task = Task {
            plan: plan.clone(),
            handle: tokio::spawn(probing),
        };
        self.tasks.insert(key.clone(), task);
        generation
    }

    fn stop(&mut self, key: &Key) {
        if let Some(task) = self.tasks.remove(key) {
            task.handle.abort();
        }
    }
}

impl Drop for HealthChecker {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.handle.abort();
        }
    }
}

/// Why backends are being added.
enum Start<'a> {
    /// The checker starts; these backends were known down.
    Fresh(&'a [(String, IpAddr)]),
    /// A reload added them.
    Reload,
}

impl Start<'_> {
    /// The health a newly seen backend starts with, and why.
    fn initial(&self, key: &Key, checked: bool) -> (HealthState, &'static str) {
        match self {
            Start::Fresh(down) if checked && down.contains(key) => {
                (HealthState::Down, "down before restart")
            }
            _ if !checked => (HealthState::Up, "not checked"),
            Start::Fresh(_) => (HealthState::Up, "up until checks fail"),
            Start::Reload => (HealthState::Up, "added; up until checks fail"),
        }
    }
}

/// Probes `key` every `plan.interval`, from now, until aborted.
async fn probe_loop(shared: Arc<Shared>, key: Key, generation: u64, plan: CheckPlan) {
    let mut ticks = tokio::time::interval(plan.interval);
    // A probe never outlasts the interval (timeout <= interval), so ticks
    // are only late when the runtime is; then keep the spacing.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let started = Instant::now();
        let result = probe(&plan.probe).await;
        shared.record(&key, generation, result, started.elapsed());
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements; take it after a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one probe result of `key` and publishes a flip if it caused
    /// one. Results of a replaced task are dropped.
    fn record(
        &self,
        key: &Key,
        generation: u64,
        result: Result<(), ProbeFailure>,
        took: std::time::Duration,
    ) {
        let mut state = self.lock();
        let Some(entry) = state.entries.get_mut(key) else {
            return;
        };
        if entry.generation != Some(generation) {
            return;
        }
        let outcome = result
            .as_ref()
            .map_or_else(|f| f.outcome, |()| ProbeOutcome::Ok);
        self.metrics.count_probe(&key.0, key.1, outcome, took);
        if let Err(failure) = &result {
            trace!(pool = %key.0, backend = %key.1, %failure, "probe failed");
        }
        let Some(transition) =
            entry
                .tracker
                .record(result.as_ref().copied(), entry.rise, entry.fall)
        else {
            return;
        };

        let state = &*state;
        self.view.send_modify(|view| {
            record_transition(view, &self.metrics, key, transition, Instant::now());
            check_panic(view, state, &self.metrics, &key.0);
        });
    }
}

/// Logs, counts and writes a flip of `key` into `view`.
fn record_transition(
    view: &mut HealthView,
    metrics: &HealthMetrics,
    key: &Key,
    transition: Transition,
    now: Instant,
) {
    let (pool, addr) = (&key.0, key.1);
    info!(
        pool = %pool,
        backend = %addr,
        from = transition.from.name(),
        to = transition.to.name(),
        reason = %transition.reason,
        "backend health changed"
    );
    metrics.count_transition(pool, addr, transition.to);
    let ramp_from = (transition.to == HealthState::Up).then_some(now);
    let backend = BackendHealth {
        state: transition.to,
        since: now,
        reason: transition.reason,
        ramp_from,
    };
    view.backends.insert(key.clone(), backend);
}

/// Works out whether `pool` is in panic mode and logs when that changes.
fn check_panic(view: &HealthView, state: &State, metrics: &HealthMetrics, pool: &str) {
    let Some(members) = state.members.get(pool) else {
        metrics.forget_pool(pool);
        return;
    };
    let usable = usable_backends(view, pool, members);
    if !metrics.set_panic(pool, usable.panic) {
        return;
    }
    let threshold = f64::from(view.policy(pool).panic_threshold.basis_points()) / 10_000.0;
    let (healthy, eligible) = (usable.healthy, usable.eligible);
    if usable.panic {
        warn!(
            pool,
            healthy,
            eligible,
            threshold,
            "pool in panic mode: too few backends are healthy, so new flows go to all of \
             them, healthy or not"
        );
    } else {
        info!(pool, healthy, eligible, threshold, "pool out of panic mode");
    }
}

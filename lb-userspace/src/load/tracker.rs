//! The running tracker: one tokio task per (pool, backend) of a pool with
//! a load signal, scraping its endpoint; the pool-wide decision of which
//! factors move (hysteresis, rate limit, cap), logged with why, published
//! as a [`LoadView`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info};

use crate::config::{Config, LoadSignal};

use super::exposition::{Selector, select};
use super::headroom::{ProposedMove, cap_pool_move, next_factor};
use super::metrics::LoadMetrics;
use super::reading::{Reading, ScrapeResult, exposition_failure};
use super::scrape::fetch;
use super::view::LoadView;

/// A backend: (pool name, address).
type Key = (String, IpAddr);

/// Scrapes the load of every backend of the pools with a `load_signal`
/// and publishes the weight factors it decides. Every backend starts at
/// its configured weight. Dropping the tracker stops its tasks.
#[derive(Debug)]
pub struct LoadTracker {
    shared: Arc<Shared>,
    tasks: BTreeMap<Key, Task>,
    next_generation: u64,
}

#[derive(Debug)]
struct Task {
    signal: LoadSignal,
    handle: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    view: watch::Sender<LoadView>,
    metrics: Arc<LoadMetrics>,
}

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<Key, Entry>,
    /// When each pool's factors last moved.
    last_change: BTreeMap<String, Instant>,
}

#[derive(Debug)]
struct Entry {
    signal: LoadSignal,
    /// Configured weight, for the pool-wide cap on what one move shifts.
    weight: u32,
    reading: Reading,
    /// The factor in force.
    applied: f64,
    /// The task whose results count.
    generation: u64,
}

impl LoadTracker {
    /// Starts scraping the backends of `config`'s pools with a load signal.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, where its tasks cannot be spawned.
    pub fn new(config: &Config) -> Self {
        let (view, _) = watch::channel(LoadView::default());
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            view,
            metrics: Arc::default(),
        });
        let mut tracker = Self {
            shared,
            tasks: BTreeMap::new(),
            next_generation: 0,
        };
        tracker.update_config(config);
        tracker
    }

    /// Takes a reloaded config: backends whose signal is unchanged keep
    /// their readings and factors; a changed signal restarts the readings
    /// (the factor holds until new ones move it); backends gone, or whose
    /// pool lost its signal, return to their configured weight.
    pub fn update_config(&mut self, config: &Config) {
        let wanted = signals(config);
        let shared = Arc::clone(&self.shared);
        let mut state = shared.lock();

        let gone: Vec<Key> = self
            .tasks
            .keys()
            .filter(|key| !wanted.contains_key(*key))
            .cloned()
            .collect();
        for key in gone {
            if let Some(task) = self.tasks.remove(&key) {
                task.handle.abort();
            }
            state.entries.remove(&key);
        }
        for (key, (signal, weight)) in wanted {
            if let Some(entry) = state.entries.get_mut(&key) {
                entry.weight = weight;
            }
            if self.tasks.get(&key).is_some_and(|t| t.signal == signal) {
                continue;
            }
            let generation = self.spawn(&key, &signal);
            let entry = state.entries.entry(key).or_insert_with(|| Entry {
                signal: signal.clone(),
                weight,
                reading: Reading::default(),
                applied: 1.0,
                generation,
            });
            entry.signal = signal;
            entry.reading = Reading::default();
            entry.generation = generation;
        }
        state
            .last_change
            .retain(|pool, _| config.pools.contains_key(pool));
        shared.metrics.retain(|key| state.entries.contains_key(key));
        shared.publish(&state);
    }

    /// A receiver of the view, which changes whenever a factor moves.
    pub fn subscribe(&self) -> watch::Receiver<LoadView> {
        self.shared.view.subscribe()
    }

    /// The factors in force now.
    pub fn view(&self) -> LoadView {
        self.shared.view.borrow().clone()
    }

    /// The figures, for the metrics exporter.
    pub fn metrics(&self) -> Arc<LoadMetrics> {
        Arc::clone(&self.shared.metrics)
    }

    fn spawn(&mut self, key: &Key, signal: &LoadSignal) -> u64 {
        if let Some(task) = self.tasks.remove(key) {
            task.handle.abort();
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let scraping = scrape_loop(
            Arc::clone(&self.shared),
            key.clone(),
            generation,
            signal.clone(),
        );
        let task = Task {
            signal: signal.clone(),
            handle: tokio::spawn(scraping),
        };
        self.tasks.insert(key.clone(), task);
        generation
    }
}

impl Drop for LoadTracker {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.handle.abort();
        }
    }
}

/// Every backend of a pool with a load signal, with that signal.
fn signals(config: &Config) -> BTreeMap<Key, (LoadSignal, u32)> {
    let mut out = BTreeMap::new();
    for (name, pool) in &config.pools {
        let Some(signal) = &pool.load_signal else {
            continue;
        };
        for backend in &pool.backends {
            let key = (name.clone(), backend.address);
            out.insert(key, (signal.clone(), backend.weight));
        }
    }
    out
}

/// Scrapes `key` every `signal.interval`, from now, until aborted.
async fn scrape_loop(shared: Arc<Shared>, key: Key, generation: u64, signal: LoadSignal) {
    let target = SocketAddr::new(key.1, signal.port);
    let selector = Selector {
        metric: signal.metric.clone(),
        labels: signal.labels.clone(),
    };
    let mut ticks = tokio::time::interval(signal.interval);
    // A scrape never outlasts the interval (timeout <= interval).
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let result: ScrapeResult = fetch(target, &signal.url_path, signal.timeout)
            .await
            .and_then(|body| {
                select(&body, &selector).map_err(|e| exposition_failure(e, &signal.metric))
            });
        shared.record(&key, generation, result);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements; take it after a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one scrape of `key`, then lets its pool's factors move.
    fn record(&self, key: &Key, generation: u64, result: ScrapeResult) {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(entry) = state.entries.get_mut(key) else {
            return;
        };
        if entry.generation != generation {
            return;
        }
        let (outcome, failure) = entry.reading.observe(&entry.signal, result, now);
        self.metrics
            .count_scrape(key, outcome, entry.reading.smoothed);
        if let Some(detail) = failure {
            let result = outcome.name();
            debug!(pool = %key.0, backend = %key.1, result, detail, "load scrape failed");
        }
        // Published after every read: the view carries the loads too
        // (cost-aware tiers, canary rollback), and only a visible change
        // reaches the daemon.
        self.decide(&mut state, &key.0, now);
        self.publish(&state);
    }

    /// Moves the factors of `pool` that hysteresis lets move, unless the
    /// pool moved less than `min_interval` ago. Returns whether any moved.
    fn decide(&self, state: &mut State, pool: &str, now: Instant) -> bool {
        let recent = |signal: &LoadSignal| {
            state
                .last_change
                .get(pool)
                .is_some_and(|at| now.saturating_duration_since(*at) < signal.min_interval)
        };
        let mut proposed: Vec<(IpAddr, ProposedMove)> = Vec::new();
        let mut pool_weight = 0;
        let mut cap = 1.0;
        let mut held = false;
        for ((entry_pool, addr), entry) in &state.entries {
            if entry_pool != pool {
                continue;
            }
            let signal = &entry.signal;
            pool_weight += entry.weight;
            cap = signal.max_moved_share;
            let bounds = (signal.min_weight_factor, signal.max_weight_factor);
            let Some(next) = next_factor(
                entry.applied,
                entry.reading.wanted,
                bounds,
                signal.step,
                signal.max_moved_share,
            ) else {
                continue;
            };
            if held || recent(signal) {
                held = true;
                continue;
            }
            let weight = entry.weight;
            let applied = entry.applied;
            proposed.push((
                *addr,
                ProposedMove {
                    weight,
                    applied,
                    next,
                },
            ));
        }
        if held {
            return false;
        }
        let mut moves: Vec<ProposedMove> = proposed.iter().map(|(_, m)| *m).collect();
        cap_pool_move(&mut moves, pool_weight, cap);

        let mut moved = false;
        for ((addr, _), m) in proposed.iter().zip(&moves) {
            let Some(entry) = state.entries.get_mut(&(pool.to_owned(), *addr)) else {
                continue;
            };
            info!(
                pool,
                backend = %addr,
                from = format!("{:.3}", m.applied),
                to = format!("{:.3}", m.next),
                wanted = format!("{:.3}", entry.reading.wanted),
                why = %entry.reading.why,
                "load weight factor changed"
            );
            entry.applied = m.next;
            self.metrics
                .set_factor(&(pool.to_owned(), *addr), m.next, true);
            moved = true;
        }
        if moved {
            state.last_change.insert(pool.to_owned(), now);
        }
        moved
    }

    fn publish(&self, state: &State) {
        let factors = state
            .entries
            .iter()
            .map(|(key, entry)| (key.clone(), entry.applied))
            .collect();
        for (key, entry) in &state.entries {
            self.metrics.set_factor(key, entry.applied, false);
        }
        let loads_percent = state
            .entries
            .iter()
            .filter_map(|(key, entry)| {
                let load = entry.reading.smoothed?;
                Some((key.clone(), (load * 100.0).round().clamp(0.0, 1e6) as u32))
            })
            .collect();
        let view = LoadView {
            factors,
            loads_percent,
        };
        self.view.send_if_modified(|current| {
            let changed = *current != view;
            *current = view;
            changed
        });
    }
}

//! One backend's readings turned into the factor it should get: the load
//! read (a gauge's mean, or a counter's rate), smoothed, and the fallbacks
//! when reads fail.

use std::time::Instant;

use crate::config::{LoadKind, LoadSignal};

use super::exposition::ExpositionError;
use super::headroom::{ewma, headroom_factor, plausible};
use super::scrape::{ScrapeFailure, ScrapeOutcome};

/// What one backend's reads have shown so far.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// Moving average of the load (1 = full); `None` before the first good
    /// read and after a fall-back.
    pub smoothed: Option<f64>,
    /// When the last good read came.
    pub last_good: Option<Instant>,
    /// The factor the load asks for, before hysteresis.
    pub wanted: f64,
    /// Why `wanted` is what it is, for the log.
    pub why: String,
    /// For a rate: the previous sum and when it was read.
    counter: Option<(f64, Instant)>,
}

impl Default for Reading {
    fn default() -> Self {
        Self {
            smoothed: None,
            last_good: None,
            wanted: 1.0,
            why: "no reading yet".to_owned(),
            counter: None,
        }
    }
}

/// The values one scrape gave, or why it gave none.
pub type ScrapeResult = Result<Vec<f64>, ScrapeFailure>;

/// Classifies an exposition error as a scrape failure.
pub fn exposition_failure(error: ExpositionError, metric: &str) -> ScrapeFailure {
    match error {
        ExpositionError::Malformed(detail) => ScrapeFailure::new(ScrapeOutcome::ParseError, detail),
        ExpositionError::Missing => {
            let detail = format!("no sample of {metric} with the configured labels");
            ScrapeFailure::new(ScrapeOutcome::Missing, detail)
        }
    }
}

impl Reading {
    /// Takes one scrape's result at `now`; returns its outcome (for the
    /// counters) and the failure detail, if any.
    pub fn observe(
        &mut self,
        signal: &LoadSignal,
        result: ScrapeResult,
        now: Instant,
    ) -> (ScrapeOutcome, Option<String>) {
        let load = result.and_then(|values| self.load(signal, &values, now));
        match load {
            Ok(None) => (ScrapeOutcome::Ok, None),
            Ok(Some(load)) => {
                let smoothed = ewma(self.smoothed, load, signal.ewma_alpha);
                self.smoothed = Some(smoothed);
                self.last_good = Some(now);
                let (min, max) = (signal.min_weight_factor, signal.max_weight_factor);
                self.wanted = headroom_factor(smoothed, signal.target, min, max);
                self.why = format!(
                    "{} at {:.0} % (smoothed), target {:.0} %",
                    signal.metric,
                    smoothed * 100.0,
                    signal.target * 100.0
                );
                (ScrapeOutcome::Ok, None)
            }
            Err(failure) => {
                self.fail(signal, &failure, now);
                (failure.outcome, Some(failure.detail))
            }
        }
    }

    /// The load in `values`: `None` when a rate has no previous read yet
    /// (or its counter went back).
    fn load(
        &mut self,
        signal: &LoadSignal,
        values: &[f64],
        now: Instant,
    ) -> Result<Option<f64>, ScrapeFailure> {
        let sum: f64 = values.iter().sum();
        let value = match signal.kind {
            LoadKind::Gauge => sum / values.len() as f64,
            LoadKind::Rate => {
                let previous = self.counter.replace((sum, now));
                let Some((before, then)) = previous else {
                    return Ok(None);
                };
                let seconds = now.saturating_duration_since(then).as_secs_f64();
                // A counter that went back restarted: start from it again.
                if sum < before || seconds <= 0.0 {
                    return Ok(None);
                }
                (sum - before) / seconds
            }
        };
        let load = value / signal.scale;
        if !plausible(load) {
            let detail = format!("{} read {value}, which is not a load", signal.metric);
            return Err(ScrapeFailure::new(ScrapeOutcome::Absurd, detail));
        }
        Ok(Some(load))
    }

    /// After a failed read: the last good factor holds for `grace`, then
    /// the configured weight (factor 1) returns and the average restarts.
    fn fail(&mut self, signal: &LoadSignal, failure: &ScrapeFailure, now: Instant) {
        let within_grace = self
            .last_good
            .is_some_and(|good| now.saturating_duration_since(good) <= signal.grace);
        let already_back = self.smoothed.is_none() && self.wanted == 1.0;
        if within_grace || already_back {
            return;
        }
        self.smoothed = None;
        self.counter = None;
        self.wanted = 1.0;
        self.why = format!(
            "no good reading for {:?} ({}): back to the configured weight",
            signal.grace, failure.detail
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Config;

    fn signal(kind: LoadKind, scale: f64) -> LoadSignal {
        let yaml = "interfaces: [{name: eth0}]\nencap: {source_v4: 10.255.0.0/24}\n\
                    vips: [{name: web, address: 10.0.0.1, port: 80, protocol: tcp, pool: web}]\n\
                    pools: {web: {backends: [{address: 10.0.1.1}], load_signal: {}}}\n";
        let config = Config::from_str(yaml, "test").expect("valid config").config;
        let mut signal = config.pools["web"]
            .load_signal
            .clone()
            .expect("load signal");
        (signal.kind, signal.scale, signal.grace) = (kind, scale, Duration::from_secs(10));
        signal
    }

    fn failure() -> ScrapeResult {
        Err(ScrapeFailure::new(ScrapeOutcome::Timeout, "no answer"))
    }

    #[test]
    fn a_gauge_over_the_target_lowers_the_wanted_factor() {
        let (signal, mut reading, now) = (
            signal(LoadKind::Gauge, 100.0),
            Reading::default(),
            Instant::now(),
        );
        assert_eq!(
            reading.observe(&signal, Ok(vec![95.0]), now).0,
            ScrapeOutcome::Ok
        );
        assert!((reading.wanted - 1.0 / 6.0).abs() < 1e-9, "{reading:?}");
        // Two GPUs: their mean.
        let mut two = Reading::default();
        two.observe(&signal, Ok(vec![100.0, 70.0]), now);
        assert!((two.wanted - 0.5).abs() < 1e-9, "{two:?}");
    }

    #[test]
    fn absurd_values_are_counted_and_change_nothing() {
        let (signal, mut reading, now) = (
            signal(LoadKind::Gauge, 100.0),
            Reading::default(),
            Instant::now(),
        );
        for bad in [f64::NAN, -5.0, 1e9, f64::INFINITY] {
            assert_eq!(
                reading.observe(&signal, Ok(vec![bad]), now).0,
                ScrapeOutcome::Absurd
            );
            assert_eq!(reading.wanted, 1.0);
        }
    }

    #[test]
    fn the_last_good_factor_holds_for_the_grace_then_the_configured_weight_returns() {
        let (signal, mut reading, start) = (
            signal(LoadKind::Gauge, 100.0),
            Reading::default(),
            Instant::now(),
        );
        reading.observe(&signal, Ok(vec![95.0]), start);
        let held = reading.wanted;
        reading.observe(&signal, failure(), start + Duration::from_secs(5));
        assert_eq!(reading.wanted, held);
        reading.observe(&signal, failure(), start + Duration::from_secs(11));
        assert_eq!(reading.wanted, 1.0);
        assert!(reading.why.contains("configured weight"), "{}", reading.why);
    }

    #[test]
    fn a_rate_needs_two_reads_and_divides_by_the_scale() {
        let (signal, mut reading, start) = (
            signal(LoadKind::Rate, 2.0),
            Reading::default(),
            Instant::now(),
        );
        reading.observe(&signal, Ok(vec![100.0, 50.0]), start);
        assert_eq!(reading.smoothed, None);
        // 1.8 busy CPU-seconds per second on 2 CPUs: 90 % load.
        reading.observe(
            &signal,
            Ok(vec![109.0, 59.0]),
            start + Duration::from_secs(10),
        );
        let load = reading.smoothed.expect("a rate after two reads");
        assert!((load - 0.9).abs() < 1e-9, "{load}");
        // A counter that went back is a restart, not a negative load.
        let outcome = reading.observe(&signal, Ok(vec![1.0]), start + Duration::from_secs(20));
        assert_eq!(outcome.0, ScrapeOutcome::Ok);
        assert!((reading.smoothed.unwrap_or_default() - 0.9).abs() < 1e-9);
    }
}

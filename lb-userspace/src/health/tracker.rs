//! Rise and fall: turning a backend's probe results into up and down.
//!
//! Only consecutive results count: one success resets the failure run and
//! one failure resets the success run, so a flapping backend never crosses
//! either threshold.

use super::probe::ProbeFailure;

/// A backend's health as its checks see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealthState {
    /// Passes its checks (or is not checked): may take flows.
    Up,
    /// Failed `fall` probes in a row: takes no flows, and its tracked flows
    /// are re-steered.
    Down,
}

impl HealthState {
    /// Lowercase name, as in logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            HealthState::Up => "up",
            HealthState::Down => "down",
        }
    }
}

/// A flip of a backend's health, with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The health before.
    pub from: HealthState,
    /// The health after.
    pub to: HealthState,
    /// Why, as in "3 consecutive failures: connection refused".
    pub reason: String,
}

/// The runs of consecutive results of one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracker {
    health: HealthState,
    successes: u32,
    failures: u32,
}

impl Tracker {
    /// A tracker starting at `health` with no results yet.
    pub fn new(health: HealthState) -> Self {
        Self {
            health,
            successes: 0,
            failures: 0,
        }
    }

    /// The current health.
    pub fn health(&self) -> HealthState {
        self.health
    }

    /// Records one probe result; returns the transition it caused, if any.
    /// `rise` successes in a row bring a down backend up, `fall` failures in
    /// a row take an up backend down.
    pub fn record(
        &mut self,
        result: Result<(), &ProbeFailure>,
        rise: u32,
        fall: u32,
    ) -> Option<Transition> {
        match result {
            Ok(()) => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                if self.health == HealthState::Down && self.successes >= rise {
                    let reason = format!("{} consecutive successes", self.successes);
                    return Some(self.flip(HealthState::Up, reason));
                }
            }
            Err(failure) => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                if self.health == HealthState::Up && self.failures >= fall {
                    let reason = format!("{} consecutive failures: {failure}", self.failures);
                    return Some(self.flip(HealthState::Down, reason));
                }
            }
        }
        None
    }

    /// Forgets the runs (the check changed), keeping the health.
    pub fn reset_runs(&mut self) {
        self.successes = 0;
        self.failures = 0;
    }

    /// Sets the health outright, for reasons other than probes.
    pub fn force(&mut self, health: HealthState, reason: &str) -> Option<Transition> {
        self.reset_runs();
        (self.health != health).then(|| self.flip(health, reason.to_owned()))
    }

    fn flip(&mut self, to: HealthState, reason: String) -> Transition {
        let from = self.health;
        self.health = to;
        self.reset_runs();
        Transition { from, to, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::probe::ProbeOutcome;

    fn refused() -> ProbeFailure {
        ProbeFailure::new(ProbeOutcome::Refused, "connection refused")
    }

    #[test]
    fn an_up_backend_goes_down_on_exactly_fall_failures_in_a_row() {
        let mut tracker = Tracker::new(HealthState::Up);
        let failure = refused();
        assert_eq!(tracker.record(Err(&failure), 2, 3), None);
        assert_eq!(tracker.record(Err(&failure), 2, 3), None);
        let transition = tracker.record(Err(&failure), 2, 3).expect("third failure");
        assert_eq!(
            (transition.from, transition.to),
            (HealthState::Up, HealthState::Down)
        );
        assert_eq!(
            transition.reason,
            "3 consecutive failures: connection refused"
        );
        assert_eq!(tracker.record(Err(&failure), 2, 3), None, "logged once");
    }

    #[test]
    fn a_success_breaks_a_run_of_failures() {
        let mut tracker = Tracker::new(HealthState::Up);
        let failure = refused();
        for _ in 0..10 {
            assert_eq!(tracker.record(Err(&failure), 2, 3), None);
            assert_eq!(tracker.record(Err(&failure), 2, 3), None);
            assert_eq!(tracker.record(Ok(()), 2, 3), None);
        }
        assert_eq!(tracker.health(), HealthState::Up);
    }

    #[test]
    fn a_down_backend_comes_up_on_rise_successes_in_a_row() {
        let mut tracker = Tracker::new(HealthState::Down);
        let failure = refused();
        assert_eq!(tracker.record(Ok(()), 2, 3), None);
        assert_eq!(tracker.record(Err(&failure), 2, 3), None);
        assert_eq!(tracker.record(Ok(()), 2, 3), None);
        let transition = tracker
            .record(Ok(()), 2, 3)
            .expect("second success in a row");
        assert_eq!(transition.to, HealthState::Up);
        assert_eq!(transition.reason, "2 consecutive successes");
    }

    #[test]
    fn forcing_the_same_health_is_no_transition() {
        let mut tracker = Tracker::new(HealthState::Up);
        assert_eq!(tracker.force(HealthState::Up, "check removed"), None);
        let down = tracker.force(HealthState::Down, "restored").expect("flip");
        assert_eq!((down.from, down.to), (HealthState::Up, HealthState::Down));
    }
}

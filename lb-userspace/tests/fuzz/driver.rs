//! The fuzz loop's pieces: case count and seed from the environment, the
//! next frame (a seed or a generated frame, mutated a few times), and a
//! report that keeps the first failures and counts outcomes.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng, rngs::SmallRng};

use super::{mutate::mutate, sources::Generator};

/// Random cases per program when `XLB_FUZZ_CASES` is unset: small enough
/// for CI (a few seconds).
const DEFAULT_CASES: u64 = 20_000;
/// Seed when `XLB_FUZZ_SEED` is unset.
const DEFAULT_SEED: u64 = 0x786c_625f_6675_7a7a;
/// Failures printed in full.
const SHOWN_FAILURES: usize = 8;
/// The kernel refuses test-run frames shorter than an Ethernet header.
pub const MIN_FRAME: usize = 14;

/// Random cases to run (`XLB_FUZZ_CASES`).
pub fn case_count() -> u64 {
    env_number("XLB_FUZZ_CASES").unwrap_or(DEFAULT_CASES)
}

/// A generator seeded from `XLB_FUZZ_SEED` (or the fixed default), printed
/// so a failure can be replayed.
pub fn seeded_rng(program: &str) -> SmallRng {
    let seed = env_number("XLB_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    eprintln!(
        "fuzz {program}: seed {seed:#x} (XLB_FUZZ_SEED), {} cases",
        case_count()
    );
    SmallRng::seed_from_u64(seed)
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.replace('_', "");
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name} must be a number, not {text:?}")))
}

/// The next random case: a seed or a generated frame, mutated 0 to 3
/// times, and how it was made.
pub fn next_frame(
    rng: &mut SmallRng,
    seeds: &[Vec<u8>],
    generators: &[Generator],
) -> (Vec<u8>, String) {
    let (mut frame, mut how) = if rng.random_bool(0.3) {
        let g = rng.random_range(0..generators.len());
        (generators[g](rng), format!("generator {g}"))
    } else {
        let s = rng.random_range(0..seeds.len());
        (seeds[s].clone(), format!("seed {s}"))
    };
    for _ in 0..rng.random_range(0..=3) {
        how.push_str(", ");
        how.push_str(mutate(rng, &mut frame));
    }
    (frame, how)
}

/// Outcome counts and the first failures of one program's fuzz run.
pub struct Report {
    program: &'static str,
    cases: u64,
    outcomes: BTreeMap<String, u64>,
    failures: Vec<String>,
    failed: u64,
}

impl Report {
    /// An empty report.
    pub fn new(program: &'static str) -> Self {
        Self {
            program,
            cases: 0,
            outcomes: BTreeMap::new(),
            failures: Vec::new(),
            failed: 0,
        }
    }

    /// Records one case's outcome (the counter that moved) or failure.
    pub fn record<S: std::fmt::Debug>(
        &mut self,
        result: Result<S, String>,
        how: &str,
        frame: &[u8],
    ) {
        self.cases += 1;
        match result {
            Ok(stat) => *self.outcomes.entry(format!("{stat:?}")).or_default() += 1,
            Err(why) => {
                self.failed += 1;
                if self.failures.len() < SHOWN_FAILURES {
                    self.failures
                        .push(format!("{why}\n  made by: {how}\n  frame: {}", hex(frame)));
                }
            }
        }
    }

    /// Prints the outcome counts; panics listing the failures if any.
    pub fn finish(self) {
        eprintln!(
            "fuzz {}: {} cases, outcomes {:?}",
            self.program, self.cases, self.outcomes
        );
        assert!(
            self.failed == 0,
            "fuzz {}: {} of {} cases broke an invariant; first ones:\n{}",
            self.program,
            self.failed,
            self.cases,
            self.failures.join("\n")
        );
    }
}

fn hex(frame: &[u8]) -> String {
    frame.iter().map(|b| format!("{b:02x}")).collect()
}

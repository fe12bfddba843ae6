//! `cargo xtask bench`: set up, then measure. The default run (under 5
//! minutes on 2 cores) takes every figure and a bounded fuzz run:
//! the control plane in the testbed (`testbed/benches/control`), then the
//! data plane and Maglev (`lb-userspace/benches/xlb-bench`, which prints
//! the tables and writes `bench/results/DATE-COMMIT.json`), then the packet
//! fuzzer (`lb-userspace/tests/xlb_fuzz.rs`). `--long` adds the hardening
//! runs: millions of fuzz cases and the full reload storm and kill loop.
//!
//! xtask does not depend on lb-userspace: it must build before setup has
//! installed bpf-linker, so everything runs as cargo commands. Method and
//! figures: bench/README.md.

use clap::Args;

use crate::{cmd, setup, soak};

/// Fuzz cases per XDP program in the default run.
const QUICK_FUZZ_CASES: u64 = 200_000;
/// Fuzz cases per XDP program with `--long`.
const LONG_FUZZ_CASES: u64 = 2_000_000;

/// Options of `cargo xtask bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Also run the long hardening runs (several minutes): 2 million fuzz
    /// cases per program and the full reload storm and kill loop.
    #[arg(long)]
    pub long: bool,
    /// Random fuzz cases per XDP program (0 skips the fuzzer; default
    /// 200 000, or 2 000 000 with `--long`), e.g. `--fuzz-cases 10000000`.
    #[arg(long)]
    pub fuzz_cases: Option<u64>,
    /// Seed of the fuzzer's generator (default: the fixed one the tests use).
    #[arg(long)]
    pub fuzz_seed: Option<u64>,
    /// Reloads (half of them broken) in the `--long` reload storm.
    #[arg(long, default_value_t = 100)]
    pub storm_reloads: u32,
    /// SIGKILLs and restarts of xlbd in the `--long` kill loop.
    #[arg(long, default_value_t = 50)]
    pub storm_kills: u32,
    /// After the rest, soak the health checker and load tracker against
    /// hostile targets for this long (as `cargo xtask soak`), e.g. `1h`.
    #[arg(long, value_parser = soak::parse_duration)]
    pub soak: Option<u64>,
}

/// Runs setup, the control-plane, data-plane and Maglev figures, the
/// fuzzer, and with `--long` the reload storm.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!("the benchmark and the fuzzer load XDP programs: run as root");
    }
    setup::run()?;
    // The control-plane bench runs the release xlbd and xlb-backend.
    cmd::run(cmd::cargo().args(["build", "--release", "--bins", "-p", "lb-userspace"]))?;
    cmd::run(cmd::cargo().args(["build", "--release", "--bins", "-p", "xlb-testbed"]))?;
    cmd::run(cmd::cargo().args(["bench", "-p", "xlb-testbed", "--bench", "control"]))?;
    // Last, so its tables and JSON include the control-plane figures.
    cmd::run(cmd::cargo().args(["bench", "-p", "lb-userspace", "--bench", "xlb-bench"]))?;

    let default_cases = if args.long {
        LONG_FUZZ_CASES
    } else {
        QUICK_FUZZ_CASES
    };
    let cases = args.fuzz_cases.unwrap_or(default_cases);
    if cases > 0 {
        fuzz(cases, args.fuzz_seed)?;
    }
    if args.long {
        storm(args)?;
    }
    if let Some(duration) = args.soak {
        soak::run(&soak::SoakArgs { duration })?;
    }
    Ok(())
}

/// The packet fuzzer with `cases` cases per program.
fn fuzz(cases: u64, seed: Option<u64>) -> anyhow::Result<()> {
    let mut fuzz = cmd::cargo();
    fuzz.args([
        "test",
        "--release",
        "-p",
        "lb-userspace",
        "--test",
        "xlb_fuzz",
    ])
    // The two fuzz loops, not the oracle's self-test; outcome counts shown.
    .args(["--", "keeps_every_invariant", "--nocapture"])
    .env("XLB_FUZZ_CASES", cases.to_string());
    if let Some(seed) = seed {
        fuzz.env("XLB_FUZZ_SEED", seed.to_string());
    }
    cmd::run(&mut fuzz)
}

/// The end-to-end reload storm and kill loop at full length, under traffic.
fn storm(args: &BenchArgs) -> anyhow::Result<()> {
    cmd::run(
        cmd::cargo()
            .args([
                "test",
                "-p",
                "xlb-testbed",
                "--test",
                "e2e_storm",
                "--",
                "--nocapture",
            ])
            .env("XLB_STORM_RELOADS", args.storm_reloads.to_string())
            .env("XLB_STORM_KILLS", args.storm_kills.to_string()),
    )
}

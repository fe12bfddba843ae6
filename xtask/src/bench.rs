//! `cargo xtask bench`: set up, then run the data-plane and Maglev
//! benchmark (`lb-userspace/benches/xlb-bench`) and the packet fuzzer with
//! millions of cases (`lb-userspace/tests/xlb_fuzz.rs`).
//!
//! xtask does not depend on lb-userspace: it must build before setup has
//! installed bpf-linker, so both run as cargo commands. Method and figures:
//! docs/BENCHMARKS.md.

use clap::Args;

use crate::{cmd, setup};

/// Options of `cargo xtask bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Random fuzz cases per XDP program after the benchmark (0 skips the
    /// fuzzer), e.g. `--fuzz-cases 10000000`.
    #[arg(long, default_value_t = 2_000_000)]
    pub fuzz_cases: u64,
    /// Seed of the fuzzer's generator (default: the fixed one the tests use).
    #[arg(long)]
    pub fuzz_seed: Option<u64>,
    /// Reloads (half of them broken) in the long reload-storm run.
    #[arg(long, default_value_t = 100)]
    pub storm_reloads: u32,
    /// SIGKILLs and restarts of xlbd in the long fault-loop run.
    #[arg(long, default_value_t = 50)]
    pub storm_kills: u32,
}

/// Runs setup, the benchmark, the fuzzer, then the long reload storm.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!("the benchmark and the fuzzer load XDP programs: run as root");
    }
    setup::run()?;
    cmd::run(cmd::cargo().args(["bench", "-p", "lb-userspace", "--bench", "xlb-bench"]))?;
    if args.fuzz_cases > 0 {
        fuzz(args)?;
    }
    storm(args)
}

/// The packet fuzzer with `args.fuzz_cases` cases per program.
fn fuzz(args: &BenchArgs) -> anyhow::Result<()> {
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
    .env("XLB_FUZZ_CASES", args.fuzz_cases.to_string());
    if let Some(seed) = args.fuzz_seed {
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

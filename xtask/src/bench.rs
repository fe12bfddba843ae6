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
}

/// Runs setup, the benchmark, then the fuzzer.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!("the benchmark and the fuzzer load XDP programs: run as root");
    }
    setup::run()?;
    cmd::run(cmd::cargo().args(["bench", "-p", "lb-userspace", "--bench", "xlb-bench"]))?;
    if args.fuzz_cases == 0 {
        return Ok(());
    }

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

//! `cargo xtask test`: set up, build, and run every test.

use clap::Args;

use crate::{cmd, setup};

/// Options of `cargo xtask test`.
#[derive(Args)]
pub struct TestArgs {
    /// Arguments passed on to `cargo test` after the workspace flags,
    /// e.g. `-- --test-threads=1`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs setup, then `cargo test --workspace`.
pub fn run(args: &TestArgs) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!("the tests load XDP programs and create network namespaces: run as root");
    }
    setup::run()?;
    cmd::run(
        cmd::cargo()
            // lb-ebpf builds for the BPF target only; the packet tests run it.
            .args([
                "test",
                "--workspace",
                "--exclude",
                "lb-ebpf",
                "--no-fail-fast",
            ])
            .args(&args.rest),
    )
}

//! `cargo xtask setup`: installs what a fresh machine lacks, idempotently.
//!
//! What the kernel side needs (see README "Toolchain"): Debian's LLVM 22
//! (bpf-linker links against it; rustc's own LLVM is 22), rust-src for the
//! nightly toolchain (`-Z build-std=core` for bpfel-unknown-none),
//! bpf-linker 0.13.0 built for LLVM 22, bpftool, ethtool and iproute2 for the
//! testbed, and bpffs mounted at /sys/fs/bpf. Each step checks first and
//! says what it did.

use std::{path::Path, process::Command};

use anyhow::{Context as _, bail};

use crate::cmd::{self, output, succeeds};

/// Debian packages the build, the tests and the testbed use.
const DEBIAN_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "bpftool",
    "ethtool",
    "iproute2",
    "iputils-ping",
    "iptables",
    // The real node_exporter that lb-userspace/tests/load.rs scrapes.
    "prometheus-node-exporter",
    // The fleet: etcd holds the config, BIRD announces the VIPs
    // (lb-userspace/tests/etcd.rs, testbed's fleet test).
    "etcd-server",
    "bird2",
];

/// The toolchain that builds lb-ebpf (`rustup run nightly`, as aya-build does).
const NIGHTLY: &str = "nightly";

/// The bpf-linker release known to work with LLVM 22 here.
const BPF_LINKER_VERSION: &str = "0.13.0";

/// Where Debian's LLVM 22 keeps llvm-config.
const LLVM_BIN: &str = "/usr/lib/llvm-22/bin";

/// Runs every step.
pub fn run() -> anyhow::Result<()> {
    debian_packages()?;
    rust_src()?;
    bpf_linker()?;
    bpffs()?;
    println!("setup: done");
    Ok(())
}

fn debian_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .copied()
        .filter(|pkg| !debian_installed(pkg))
        .collect();
    if missing.is_empty() {
        println!("setup: Debian packages present");
        return Ok(());
    }
    println!("setup: installing Debian packages: {}", missing.join(" "));
    cmd::run(Command::new("apt-get").arg("update").arg("-q"))?;
    cmd::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn debian_installed(pkg: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]))
        .is_some_and(|s| s.contains("install ok installed"))
}

fn rust_src() -> anyhow::Result<()> {
    let Some(sysroot) =
        output(Command::new("rustc").args([&format!("+{NIGHTLY}"), "--print", "sysroot"]))
    else {
        bail!("the `{NIGHTLY}` toolchain is missing (rustup toolchain list); it builds lb-ebpf");
    };
    let rustlib = Path::new(sysroot.trim()).join("lib/rustlib");
    if rustlib.join("src/rust/library/core").is_dir() {
        println!("setup: rust-src for {NIGHTLY} present");
        return Ok(());
    }
    println!("setup: adding rust-src to {NIGHTLY}");
    if succeeds(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        NIGHTLY,
    ])) {
        return Ok(());
    }
    // The shared folder beside the checkout carries the component for
    // machines where rustup cannot reach its server.
    let tarball =
        crate::cmd::workspace_root().join("../shared/toolchain/rust-src-nightly-2026-05-19.tar.xz");
    println!("setup: rustup failed; unpacking {}", tarball.display());
    // The tarball holds src/rust/..., laid out as under lib/rustlib.
    cmd::run(
        Command::new("tar")
            .arg("-xJf")
            .arg(&tarball)
            .arg("-C")
            .arg(&rustlib),
    )
}

fn bpf_linker() -> anyhow::Result<()> {
    let version = output(Command::new("bpf-linker").arg("--version")).unwrap_or_default();
    if version.contains(BPF_LINKER_VERSION) {
        println!("setup: bpf-linker {BPF_LINKER_VERSION} present");
        return Ok(());
    }
    println!("setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (a few minutes)");
    // llvm-sys finds llvm-config through PATH; without LLVM 22's first it
    // links against nothing and fails with "-lLLVM not found".
    let path = format!("{LLVM_BIN}:{}", std::env::var("PATH").unwrap_or_default());
    cmd::run(
        crate::cmd::cargo()
            .args([
                "install",
                "bpf-linker",
                "--locked",
                "--version",
                BPF_LINKER_VERSION,
            ])
            .args(["--no-default-features", "--features", "llvm-22"])
            .env("PATH", path),
    )
}

fn bpffs() -> anyhow::Result<()> {
    let mounts = std::fs::read_to_string("/proc/mounts").context("reading /proc/mounts")?;
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("bpf"))
    {
        println!("setup: bpffs mounted");
        return Ok(());
    }
    println!("setup: mounting bpffs at /sys/fs/bpf");
    cmd::run(Command::new("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"]))
}

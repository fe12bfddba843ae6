//! Builds the XDP objects (lb-ebpf) with the nightly toolchain and
//! bpf-linker, into OUT_DIR, where `xlb::objects` embeds them.

use anyhow::Context as _;
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    // lb-ebpf depends on lb-common; aya-build only watches lb-ebpf itself.
    println!("cargo:rerun-if-changed=../lb-common/src");
    let ebpf = Package {
        name: "lb-ebpf",
        root_dir: "../lb-ebpf",
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf], Toolchain::default())
        .context("building lb-ebpf (run `cargo xtask setup` if the toolchain is missing)")
}

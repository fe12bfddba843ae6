//! `cargo xtask run`: the operator's build-and-load path. Sets up, builds,
//! then replaces this process with `xlbd run --config FILE`, on another
//! interface when `--iface` says so.
//!
//! xlbd has no flag to override the interfaces, so `--iface` renders a
//! copy of the config with its top-level `interfaces:` block replaced,
//! under target/xtask-run/. Limitation: xlbd then watches that copy, so
//! later edits to FILE need another `cargo xtask run` (or edit the copy).

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use clap::Args;

use crate::demo::{build_bins, require_root};
use crate::{cmd, setup};

/// Options of `cargo xtask run`.
#[derive(Args)]
pub struct RunArgs {
    /// The config, e.g. `--config configs/minimal.yaml`.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Attach to this interface instead of the config's, in native mode,
    /// e.g. `--iface eth1`.
    #[arg(long)]
    pub iface: Option<String>,
    /// Arguments passed on to `xlbd run`, e.g. `-- --log-format json`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs setup, builds, then execs xlbd with the (rendered) config.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    require_root("xlbd loads XDP programs and pins maps")?;
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read config {}", args.config.display()))?;
    setup::run()?;
    build_bins()?;

    let config = match &args.iface {
        Some(iface) => write_rendered(&args.config, &with_interface(&text, iface))?,
        None => args.config.clone(),
    };
    let xlbd = cmd::target_dir().join("debug").join("xlbd");
    eprintln!(
        "running {} run --config {}",
        xlbd.display(),
        config.display()
    );
    let error = Command::new(&xlbd)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .args(&args.rest)
        .exec();
    Err(error).with_context(|| format!("cannot run {}", xlbd.display()))
}

/// Writes `text` to target/xtask-run/NAME, NAME being `original`'s file
/// name, and returns that path.
fn write_rendered(original: &Path, text: &str) -> anyhow::Result<PathBuf> {
    let dir = cmd::target_dir().join("xtask-run");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = original.file_name().unwrap_or("xlb.yaml".as_ref());
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// `yaml` with its top-level `interfaces:` block (the key's line and the
/// indented or blank lines after it) replaced by one native interface.
fn with_interface(yaml: &str, iface: &str) -> String {
    let replacement = format!(
        "# interfaces replaced by `cargo xtask run --iface {iface}`\n\
         interfaces:\n  - name: {iface}\n    mode: native"
    );
    let mut out = Vec::new();
    let mut in_block = false;
    let mut replaced = false;
    for line in yaml.lines() {
        // A key or a comment in column 0 ends the block.
        if line.starts_with(|c: char| !c.is_whitespace()) {
            in_block = line.starts_with("interfaces:");
            if in_block {
                out.push(replacement.clone());
                replaced = true;
                continue;
            }
        }
        if !in_block {
            out.push(line.to_owned());
        }
    }
    if !replaced {
        out.push(replacement);
    }
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::with_interface;

    #[test]
    fn the_interfaces_block_is_replaced_and_the_rest_kept() {
        let yaml = "# top\ninterfaces:\n  - name: eth0   # here\n    mode: generic\n\n\
                    # pins\npin_path: /x\n";
        let out = with_interface(yaml, "eth1");
        assert!(
            out.contains("interfaces:\n  - name: eth1\n    mode: native\n"),
            "{out}"
        );
        assert!(!out.contains("eth0"), "{out}");
        assert!(out.starts_with("# top\n"), "{out}");
        assert!(out.ends_with("# pins\npin_path: /x\n"), "{out}");
    }

    #[test]
    fn a_flow_style_list_is_replaced_too() {
        let out = with_interface("interfaces: [{name: eth0}]\nvips: []\n", "veth9");
        assert!(out.contains("  - name: veth9\n"), "{out}");
        assert!(out.ends_with("vips: []\n"), "{out}");
    }
}

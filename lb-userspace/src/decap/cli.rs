//! `xlbd decap`: attach, reconfigure, inspect or detach `xlb_decap` on a
//! backend.

use std::{net::IpAddr, path::PathBuf};

use anyhow::Context as _;

use super::{AttachMode, Attached, attach, default_pin_dir, detach, stats};

/// Arguments of `xlbd decap`.
#[derive(Clone, Debug, clap::Args)]
pub struct DecapArgs {
    /// Interface that receives the load balancers' encapsulated packets,
    /// e.g. `--iface eth0`.
    #[arg(long)]
    pub iface: String,
    /// Outer destination address to decapsulate for, IPv4 or IPv6;
    /// repeat for several: `--addr 10.0.0.2 --addr fd00::2`. Running again
    /// with other addresses replaces the set.
    #[arg(long = "addr", required_unless_present_any = ["detach", "stats"])]
    pub addrs: Vec<IpAddr>,
    /// Pin directory on bpffs [default: /sys/fs/bpf/xlb_decap/IFACE].
    #[arg(long)]
    pub pin_path: Option<PathBuf>,
    /// Where the program runs: in the driver (native) or after the skb is
    /// built (generic, for drivers without XDP).
    #[arg(long, value_enum, default_value_t = AttachMode::Native)]
    pub mode: AttachMode,
    /// Detach the program and remove its pins: `xlbd decap --iface eth0
    /// --detach`.
    #[arg(long, conflicts_with_all = ["addrs", "stats"])]
    pub detach: bool,
    /// Print the counters (packets by outcome) and exit: `xlbd decap
    /// --iface eth0 --stats`.
    #[arg(long, conflicts_with = "addrs")]
    pub stats: bool,
}

/// Runs `xlbd decap`.
///
/// # Errors
///
/// When attaching, detaching or reading the counters fails; the error
/// names the interface.
pub fn decap(args: &DecapArgs) -> anyhow::Result<()> {
    let pin_dir = args
        .pin_path
        .clone()
        .unwrap_or_else(|| default_pin_dir(&args.iface));
    let iface = &args.iface;

    if args.detach {
        detach(&pin_dir).with_context(|| format!("detaching xlb_decap from {iface}"))?;
        println!("xlb_decap detached from {iface}");
        return Ok(());
    }
    if args.stats {
        let counters =
            stats(&pin_dir).with_context(|| format!("reading xlb_decap counters of {iface}"))?;
        for (stat, packets) in counters.iter() {
            println!("{:<14} {packets}", stat.reason());
        }
        return Ok(());
    }

    let done = attach(iface, &args.addrs, &pin_dir, args.mode)
        .with_context(|| format!("attaching xlb_decap to {iface}"))?;
    let verb = match done {
        Attached::New => "attached to",
        Attached::Adopted => "updated on",
    };
    println!(
        "xlb_decap {verb} {iface}, pinned under {}",
        pin_dir.display()
    );
    Ok(())
}

//! The XDP receiver on the LB's switch port: the trivial `xlb_pass`
//! program, attached natively to `lb` in the switch namespace.
//!
//! Why: on Linux 6.18, `veth_xdp_xmit` drops frames sent with `XDP_TX`
//! into a veth unless the peer's NAPI ring is on. GRO turns the ring on for
//! a plain peer, but not for a bridge port: measured here, the LB counted
//! `xdp_tx` and nothing arrived on the bridge. An XDP program on the peer
//! turns the ring on in every case; `xlb_pass` passes every frame, so the
//! bridge sees the same traffic.
//!
//! The link is pinned in the testbed's pin directory, so no process has to
//! keep it open; deleting the switch namespace (or the pin) detaches it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use aya::Ebpf;
use aya::programs::links::FdLink;
use aya::programs::{Xdp, XdpMode};

use crate::netns;

/// The program attached, from `xlb::objects::XLB_BASELINE`.
pub const RECEIVER_PROGRAM: &str = "xlb_pass";

/// The pin of the receiver's link below the testbed's pin directory. Not
/// `link_*`: xlbd owns those names in the same directory.
pub fn receiver_pin(pin_dir: &Path, port: &str) -> PathBuf {
    pin_dir.join(format!("receiver-{port}"))
}

/// Attaches `xlb_pass` natively to `port` in namespace `ns` and pins the
/// link at `receiver_pin(pin_dir, port)`.
///
/// # Errors
/// When the object does not load, the port does not exist, native attach
/// fails, or the link cannot be pinned.
pub fn attach_receiver(ns: &str, port: &str, pin_dir: &Path) -> Result<()> {
    let pin = receiver_pin(pin_dir, port);
    // The attach resolves `port` and talks to the kernel from the calling
    // thread, so it runs on a thread inside the namespace.
    netns::in_ns(ns, || attach_and_pin(port, &pin))?
        .with_context(|| format!("attach {RECEIVER_PROGRAM} to port {port} in namespace {ns}"))?;
    tracing::debug!(%ns, port, pin = %pin.display(), "XDP receiver attached");
    Ok(())
}

fn attach_and_pin(port: &str, pin: &Path) -> Result<()> {
    let mut ebpf = Ebpf::load(xlb::objects::XLB_BASELINE).context("load the baseline object")?;
    let program: &mut Xdp = ebpf
        .program_mut(RECEIVER_PROGRAM)
        .with_context(|| format!("program {RECEIVER_PROGRAM} is not in the baseline object"))?
        .try_into()
        .with_context(|| format!("program {RECEIVER_PROGRAM} is not XDP"))?;
    program
        .load()
        .with_context(|| format!("load {RECEIVER_PROGRAM}"))?;
    let link_id = program
        .attach(port, XdpMode::Driver)
        .with_context(|| format!("attach natively to {port}"))?;
    let link = program.take_link(link_id).context("take the XDP link")?;
    let link = FdLink::try_from(link)
        .with_context(|| format!("the XDP link on {port} is not a bpf link"))?;
    link.pin(pin)
        .with_context(|| format!("pin the XDP link at {}", pin.display()))?;
    // Dropping `ebpf` now closes our descriptors; the pin keeps the link.
    Ok(())
}

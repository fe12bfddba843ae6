//! `xlbctl vip split`: a VIP's canary share at run time, through xlbd.

use crate::config::{Share, parse_percent};
use crate::daemon::control::Request;

use super::{Context, socket};

/// `xlbctl vip ...`.
#[derive(Debug, clap::Subcommand)]
pub enum VipCommand {
    /// Set the share of new flows sent to the VIP's canary pool, kept
    /// across reloads: `xlbctl vip split llm canary=5%`; `--reset` goes
    /// back to the config's share: `xlbctl vip split llm --reset`.
    Split(SplitArgs),
}

/// Options of `vip split`.
#[derive(Debug, clap::Args)]
pub struct SplitArgs {
    /// VIP name.
    pub vip: String,
    /// The canary's share, as `canary=5%` (0% to 100%, up to two
    /// decimals).
    #[arg(value_parser = parse_split, required_unless_present = "reset")]
    pub share: Option<Share>,
    /// Drop the share set at run time (or by a rollback), back to the
    /// config's.
    #[arg(long, conflicts_with = "share")]
    pub reset: bool,
}

fn parse_split(text: &str) -> Result<Share, String> {
    let share = text
        .strip_prefix("canary=")
        .ok_or_else(|| format!("{text:?} is not a split like canary=5%"))?;
    parse_percent(share)
}

/// Runs `vip`.
///
/// # Errors
///
/// When xlbd cannot be reached or refuses.
pub fn run(context: &Context, command: &VipCommand) -> anyhow::Result<()> {
    let VipCommand::Split(args) = command;
    let share = if args.reset { None } else { args.share };
    let request = Request::SplitVip {
        vip: args.vip.clone(),
        canary_basis_points: share.map(Share::basis_points),
    };
    socket::simple(context, request)
}

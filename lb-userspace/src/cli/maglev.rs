//! `xlbctl maglev`: how a VIP's live table divides its slots, and what a
//! reload would move.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde::Serialize;

use crate::config::Config;
use crate::dataplane::Live;
use crate::dataplane::from_config::desired_state;
use crate::maglev::{MaglevBackend, build_table, slot_shares};

use super::Context;
use super::model::{self, Service, label};
use super::output::{self, Format};

/// `xlbctl maglev ...`.
#[derive(Debug, clap::Subcommand)]
pub enum MaglevCommand {
    /// Each backend's slots against its ideal share: `xlbctl maglev show web`.
    Show {
        /// The VIP: a name, `ADDRESS:PORT[/PROTO]` or `#ID`.
        vip: String,
    },
    /// Slots each backend would gain or lose if xlbd reloaded now:
    /// `xlbctl maglev diff --config /etc/xlb/xlb.yaml.new`.
    Diff {
        /// The config to compare with [default: the one xlbd runs].
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// One backend's part of a table.
#[derive(Debug, Serialize)]
struct Share {
    backend: IpAddr,
    backend_id: u32,
    /// Weight the table was built with (`None` without the status file).
    effective_weight: Option<u32>,
    slots: u32,
    /// Slots its weight entitles it to (`None` without weights).
    ideal_slots: Option<f64>,
    /// `slots` against `ideal_slots`, in percent.
    deviation_percent: Option<f64>,
}

/// Runs `maglev`.
///
/// # Errors
///
/// When the maps or the config cannot be read, or the VIP is unknown.
pub fn run(context: &Context, command: &MaglevCommand) -> anyhow::Result<()> {
    match command {
        MaglevCommand::Show { vip } => show(context, vip),
        MaglevCommand::Diff { config } => diff(context, config.as_ref()),
    }
}

fn show(context: &Context, spec: &str) -> anyhow::Result<()> {
    let maps = context.maps()?;
    let services = model::services(&maps, context.vip_views(), false)?;
    let id = context.resolve_vip(spec, &services)?;
    let Some(service) = services.iter().find(|s| s.id == id) else {
        bail!("no VIP with id {id}");
    };
    let live = Live::read(&maps)?;
    let table = live
        .vips
        .values()
        .find(|v| v.value.id == id)
        .map(|v| v.table.clone())
        .unwrap_or_default();
    let shares = shares(service, &table);
    if context.format == Format::Json {
        return output::json(&shares);
    }
    println!(
        "{} table_size={} live_half={}",
        label(service),
        service.table_size,
        service.table_half
    );
    let mut out = output::table(
        &["BACKEND", "ID", "WEIGHT", "SLOTS", "IDEAL", "DEVIATION%"],
        1,
    );
    for s in &shares {
        out.add_row(vec![
            s.backend.to_string(),
            s.backend_id.to_string(),
            output::opt(s.effective_weight),
            s.slots.to_string(),
            output::opt(s.ideal_slots.map(|i| format!("{i:.1}"))),
            output::opt(s.deviation_percent.map(|d| format!("{d:+.2}"))),
        ]);
    }
    output::print(&out);
    Ok(())
}

fn shares(service: &Service, table: &[u32]) -> Vec<Share> {
    let index: BTreeMap<u32, u32> = service
        .backends
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id, i as u32))
        .collect();
    let by_index: Vec<u32> = table
        .iter()
        .map(|id| index.get(id).copied().unwrap_or(u32::MAX))
        .collect();
    let known = service
        .backends
        .iter()
        .all(|m| m.effective_weight.is_some());
    let weights: Vec<MaglevBackend> = service
        .backends
        .iter()
        .map(|m| MaglevBackend {
            addr: m.address,
            weight: m.effective_weight.unwrap_or(0),
        })
        .collect();
    slot_shares(&by_index, &weights)
        .into_iter()
        .zip(&service.backends)
        .map(|(share, member)| Share {
            backend: member.address,
            backend_id: member.id,
            effective_weight: member.effective_weight,
            slots: share.slots,
            ideal_slots: known.then_some(share.ideal),
            deviation_percent: known.then(|| share.deviation_percent()),
        })
        .collect()
}

/// What a reload would do to one backend's slots in one VIP's table.
#[derive(Debug, Serialize)]
struct Move {
    vip: String,
    backend: IpAddr,
    slots_now: u32,
    slots_after: u32,
    /// Slots that name this backend after and another (or none) now.
    slots_gained: u32,
    /// Slots that name this backend now and another (or none) after.
    slots_lost: u32,
}
fn diff(context: &Context, config: Option<&PathBuf>) -> anyhow::Result<()> {
    let Some(status) = &context.status else {
        bail!("maglev diff needs xlbd's status file for names and overrides");
    };
    let path = config.cloned().unwrap_or_else(|| status.config.clone());
    let loaded = Config::load(&path).with_context(|| format!("loading {}", path.display()))?;
    let desired = desired_state(&loaded.config)?;
    let maps = context.maps()?;
    let services = model::services(&maps, context.vip_views(), false)?;
    let live = Live::read(&maps)?;

    let mut moves = Vec::new();
    for vip in &desired.vips {
        let view = status.vips.iter().find(|v| v.name == vip.name);
        let now: Vec<Option<IpAddr>> =
            match view.and_then(|v| services.iter().find(|s| s.id == v.id)) {
                Some(service) => table_addresses(service, &live),
                None => Vec::new(),
            };
        // The backends as xlbd would weigh them: overrides and health kept.
        let candidates: Vec<MaglevBackend> = vip
            .backends
            .iter()
            .map(|b| {
                let current = view.and_then(|v| v.backends.iter().find(|x| x.address == b.addr));
                let mut state =
                    crate::daemon::overrides::admin_state(crate::daemon::view::state_name(b.state));
                let mut weight = b.weight;
                if let Some(over) = current.and_then(|c| c.operator.as_ref()) {
                    state = over
                        .state
                        .map_or(state, crate::daemon::overrides::admin_state);
                    weight = over.weight.unwrap_or(weight);
                }
                let healthy = current.is_none_or(|c| c.healthy);
                let takes = state == crate::dataplane::AdminState::Ready && weight > 0 && healthy;
                MaglevBackend {
                    addr: b.addr,
                    weight: if takes { weight } else { 0 },
                }
            })
            .collect();
        let after: Vec<Option<IpAddr>> = build_table(&candidates, vip.table_size)?
            .into_iter()
            .map(|slot| candidates.get(slot as usize).map(|b| b.addr))
            .collect();
        moves.extend(slot_moves(&vip.name, &now, &after));
    }
    if context.format == Format::Json {
        return output::json(&moves);
    }
    let headers = [
        "VIP",
        "BACKEND",
        "SLOTS_NOW",
        "SLOTS_AFTER",
        "GAINED",
        "LOST",
    ];
    let mut out = output::table(&headers, 2);
    for m in &moves {
        out.add_row(vec![
            m.vip.clone(),
            m.backend.to_string(),
            m.slots_now.to_string(),
            m.slots_after.to_string(),
            format!("+{}", m.slots_gained),
            format!("-{}", m.slots_lost),
        ]);
    }
    output::print(&out);
    Ok(())
}

/// The live table of `service` as the backend address of each slot.
fn table_addresses(service: &Service, live: &Live) -> Vec<Option<IpAddr>> {
    let Some(vip) = live.vips.values().find(|v| v.value.id == service.id) else {
        return Vec::new();
    };
    let address = |id: &u32| service.backends.iter().find(|m| m.id == *id);
    vip.table
        .iter()
        .map(|id| address(id).map(|m| m.address))
        .collect()
}

/// Per backend, slot for slot: what `now` holds, what `after` would, and
/// the slots that change hands. A table that changes size is compared by
/// slot index, as the flow hash would meet it.
fn slot_moves(vip: &str, now: &[Option<IpAddr>], after: &[Option<IpAddr>]) -> Vec<Move> {
    let mut moves: BTreeMap<IpAddr, Move> = BTreeMap::new();
    for slot in 0..now.len().max(after.len()) {
        let old = now.get(slot).copied().flatten();
        let new = after.get(slot).copied().flatten();
        let changed = u32::from(new != old);
        if let Some(backend) = old {
            let m = move_of(&mut moves, vip, backend);
            m.slots_now += 1;
            m.slots_lost += changed;
        }
        if let Some(backend) = new {
            let m = move_of(&mut moves, vip, backend);
            m.slots_after += 1;
            m.slots_gained += changed;
        }
    }
    moves.into_values().collect()
}

fn move_of<'a>(moves: &'a mut BTreeMap<IpAddr, Move>, vip: &str, backend: IpAddr) -> &'a mut Move {
    moves.entry(backend).or_insert_with(|| Move {
        vip: vip.to_owned(),
        backend,
        slots_now: 0,
        slots_after: 0,
        slots_gained: 0,
        slots_lost: 0,
    })
}

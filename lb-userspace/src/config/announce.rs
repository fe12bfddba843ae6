//! Validation of `announce`: the routing table xlbd keeps its VIP routes
//! in, for a routing daemon to export (see `crate::announce`).

use serde::Serialize;

use super::raw::{At, RawAnnounce};
use super::validate::Checker;

/// Tables the kernel keeps for itself: unspec, default, main and local.
const RESERVED_TABLES: [u32; 4] = [0, 253, 254, 255];

/// Where xlbd announces the VIPs it serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Announce {
    /// Routing table id (1 to 2^32-1, not 253, 254 or 255) that holds one
    /// host route per served VIP; no default, the section is opt-in.
    pub table: u32,
}

/// Validates the `announce` block.
pub(super) fn announce(check: &mut Checker, raw: &At<RawAnnounce>) -> Option<Announce> {
    let table = check.require(&raw.value.table, raw.referenced, "announce.table")?;
    if RESERVED_TABLES.contains(&table.value) {
        let message = format!(
            "table {} is the kernel's own (0 unspec, 253 default, 254 main, 255 local)",
            table.value
        );
        check.error(table.referenced, "announce.table", message);
        return None;
    }
    Some(Announce { table: table.value })
}

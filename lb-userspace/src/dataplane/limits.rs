//! How many VIPs and backend slots the maps have room for.
//!
//! The maps indexed by VIP or backend id are preallocated arrays, and
//! `MAGLEV` alone takes 512 KiB per VIP, so xlbd sizes them at load for the
//! config's `limits` instead of for the largest possible node. The sizes
//! maps really have (pinned by an earlier xlbd, perhaps under other limits)
//! are read back from `VIP_STATS` and `BACKENDS`, and they are what id
//! allocation and the readers go by.

use aya::EbpfLoader;
use lb_common::maps::{
    BACKEND_STATS, BACKENDS, MAGLEV, POLICY_STATS, POOL_TABLES, VIP_STATS, VIPS,
};
use lb_common::{DEFAULT_BACKEND_LIMIT, DEFAULT_VIP_LIMIT, maglev_entries, vip_keys};
use serde::Serialize;

/// The kernel-only per-CPU next-hop cache, sized like `BACKENDS`.
const NEXT_HOPS: &str = "NEXT_HOPS";

/// Room in the id-indexed maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// VIP ids: `0..vips`. Default `DEFAULT_VIP_LIMIT`.
    pub vips: u32,
    /// Backend slot ids: `0..backends`. Default `DEFAULT_BACKEND_LIMIT`.
    pub backends: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            vips: DEFAULT_VIP_LIMIT,
            backends: DEFAULT_BACKEND_LIMIT,
        }
    }
}

impl Limits {
    /// Whether these are the defaults (for leaving them out of the
    /// config's canonical form).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Sizes every id-indexed map of the `xlb` object for these limits.
    pub fn size_maps(&self, loader: &mut EbpfLoader<'_>) {
        loader
            .map_max_entries(VIPS, vip_keys(self.vips))
            .map_max_entries(MAGLEV, maglev_entries(self.vips))
            .map_max_entries(VIP_STATS, self.vips)
            .map_max_entries(POOL_TABLES, self.vips)
            .map_max_entries(POLICY_STATS, self.vips)
            .map_max_entries(BACKENDS, self.backends)
            .map_max_entries(BACKEND_STATS, self.backends)
            .map_max_entries(NEXT_HOPS, self.backends);
    }
}

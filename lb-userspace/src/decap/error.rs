//! Errors of loading, attaching and configuring `xlb_decap`.

use std::{io, path::PathBuf};

use aya::{
    maps::MapError,
    pin::PinError,
    programs::{ProgramError, links::LinkError},
};
use lb_common::decap::MAX_DECAP_ADDRS;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum DecapError {
    /// No address was given.
    #[error("xlb_decap needs at least one address to decapsulate for")]
    NoAddrs,
    /// More addresses than `DECAP_ADDRS` holds.
    #[error("{count} decap addresses given, at most {MAX_DECAP_ADDRS} fit")]
    TooManyAddrs {
        /// Addresses given.
        count: usize,
    },
    /// The object did not load (verifier, missing bpffs, no privilege, ...).
    #[error("loading xlb_decap")]
    Load(#[source] aya::EbpfError),
    /// The object lacks the program or a map it should have.
    #[error("{0} is missing from the xlb_decap object")]
    Missing(&'static str),
    /// A program operation failed (load, attach, take link).
    #[error("{what} xlb_decap")]
    Program {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: ProgramError,
    },
    /// The link is not a BPF link (the kernel fell back to netlink attach),
    /// so it cannot be pinned.
    #[error("xlb_decap's XDP link on {iface} cannot be pinned")]
    Link {
        /// The interface.
        iface: String,
        /// Why.
        #[source]
        source: LinkError,
    },
    /// A map operation failed.
    #[error("map {name}")]
    Map {
        /// The map.
        name: &'static str,
        /// Why.
        #[source]
        source: MapError,
    },
    /// Pinning an object failed.
    #[error("pinning {}", path.display())]
    Pin {
        /// The pin.
        path: PathBuf,
        /// Why.
        #[source]
        source: PinError,
    },
    /// A file operation on the pin directory failed.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Nothing is attached under the pin directory.
    #[error("xlb_decap is not attached under {}", path.display())]
    NotAttached {
        /// The pin directory.
        path: PathBuf,
    },
}

pub(super) fn map_error(name: &'static str) -> impl FnOnce(MapError) -> DecapError {
    move |source| DecapError::Map { name, source }
}

pub(super) fn program_error(what: &'static str) -> impl FnOnce(ProgramError) -> DecapError {
    move |source| DecapError::Program { what, source }
}

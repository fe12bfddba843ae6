//! Errors of the data plane, and the attach mode.

use std::fmt;
use std::path::PathBuf;

use aya::EbpfError;
use aya::maps::MapError;
use aya::pin::PinError;
use aya::programs::ProgramError;
use aya::programs::links::LinkError;

use crate::maglev::MaglevError;

/// How `xlb` runs on an interface. There is no automatic mode: the kernel
/// is never left to fall back to generic XDP on its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpAttachMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`).
    #[default]
    Native,
    /// In the generic network stack (`XDP_FLAGS_SKB_MODE`), slower; for
    /// drivers without XDP support.
    Generic,
}

impl fmt::Display for XdpAttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XdpAttachMode::Native => "native",
            XdpAttachMode::Generic => "generic",
        })
    }
}

/// What can go wrong loading, attaching and writing the data plane.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// The pin directory cannot be created or read.
    #[error("pin directory {}", path.display())]
    PinDir {
        /// The directory or pin.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The pin directory is not on a BPF file system.
    #[error(
        "pin directory {} is not on bpffs (mount it: `mount -t bpf bpf /sys/fs/bpf`)",
        path.display()
    )]
    NotBpffs {
        /// The directory.
        path: PathBuf,
    },
    /// Another xlbd holds the pin directory.
    #[error("another xlbd is running on pin directory {}; stop it first", path.display())]
    Busy {
        /// The directory.
        path: PathBuf,
    },
    /// A pinned map was made by an incompatible build.
    #[error(
        "pinned map {} has key/value sizes {found:?}, this xlbd expects {expected:?}; \
         run `xlbd detach` first",
        path.display()
    )]
    IncompatiblePin {
        /// The pin.
        path: PathBuf,
        /// Its key and value sizes.
        found: (usize, usize),
        /// The sizes this build uses.
        expected: (usize, usize),
    },
    /// aya failed to load the object.
    #[error("loading the xlb object")]
    Load(#[source] EbpfError),
    /// The object lacks a map.
    #[error("the xlb object has no map {name}")]
    MissingMap {
        /// Map name.
        name: &'static str,
    },
    /// The object lacks a program.
    #[error("the xlb object has no program {name}")]
    MissingProgram {
        /// Program name.
        name: &'static str,
    },
    /// The program could not be loaded.
    #[error("loading the xlb program")]
    Program(#[source] ProgramError),
    /// A map could not be opened or accessed.
    #[error("map {name}")]
    Map {
        /// Map name.
        name: &'static str,
        /// The error.
        source: MapError,
    },
    /// No interface of that name.
    #[error("interface {interface} does not exist")]
    UnknownInterface {
        /// The name.
        interface: String,
    },
    /// The interface runs an XDP program that xlbd did not attach.
    #[error(
        "interface {interface} already runs XDP program id {prog_id}, which is not ours \
         (no link pinned in our pin directory); detach it first"
    )]
    ForeignProgram {
        /// The interface.
        interface: String,
        /// The other program's id.
        prog_id: u32,
    },
    /// Our link runs in the other mode than the config asks.
    #[error(
        "interface {interface} runs xlb in the other mode; `xlbd detach` to switch to {wanted}"
    )]
    ModeChanged {
        /// The interface.
        interface: String,
        /// The mode the config asks for.
        wanted: XdpAttachMode,
    },
    /// Querying the interface over netlink failed.
    #[error("querying XDP on interface {interface}")]
    Netlink {
        /// The interface.
        interface: String,
        /// The error.
        source: std::io::Error,
    },
    /// Attaching failed.
    #[error("attaching xlb to interface {interface}")]
    Attach {
        /// The interface.
        interface: String,
        /// The error.
        source: ProgramError,
    },
    /// The kernel attached through netlink, not a link, so it cannot be pinned.
    #[error("interface {interface}: the kernel gave no bpf_link for XDP, so it cannot be pinned")]
    NoLinkSupport {
        /// The interface.
        interface: String,
    },
    /// A link could not be pinned.
    #[error("pinning the XDP link at {}", path.display())]
    PinLink {
        /// Where.
        path: PathBuf,
        /// The error.
        source: PinError,
    },
    /// A pinned link could not be opened.
    #[error("opening the pinned XDP link {}", path.display())]
    AdoptLink {
        /// Where.
        path: PathBuf,
        /// The error.
        source: LinkError,
    },
    /// A link's kernel info could not be read.
    #[error("reading the XDP link of interface {interface}")]
    LinkInfo {
        /// The interface.
        interface: String,
        /// The error.
        source: LinkError,
    },
    /// More VIPs than ids.
    #[error("more than {max} VIPs")]
    TooManyVips {
        /// The room the maps have (`Limits::vips`).
        max: u32,
    },
    /// More backends than ids.
    #[error("more than {max} backends over all VIPs")]
    TooManyBackends {
        /// The room the maps have (`Limits::backends`).
        max: u32,
    },
    /// Two VIPs with one (address, port, protocol).
    #[error("vip {vip} repeats the address, port and protocol of another vip")]
    DuplicateVip {
        /// The second VIP's name.
        vip: String,
    },
    /// A VIP names a pool the config lacks.
    #[error("vip {vip} names pool {pool}, which does not exist")]
    UnknownPool {
        /// The VIP.
        vip: String,
        /// The pool it names.
        pool: String,
    },
    /// A Maglev table could not be built.
    #[error("maglev table of vip {vip}")]
    Maglev {
        /// The VIP.
        vip: String,
        /// The error.
        source: MaglevError,
    },
}

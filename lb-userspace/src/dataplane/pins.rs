//! Where xlbd pins its maps and links on bpffs, and loading the `xlb`
//! object against those pins.
//!
//! Layout under the pin directory (default `/sys/fs/bpf/xlb`): one file per
//! map, named as in `lb_common::maps`, and `link_<interface>` for each XDP
//! link. The pins keep the data plane running while no xlbd does: the
//! kernel holds a link and its program as long as its pin exists.

use std::io;
use std::path::{Path, PathBuf};

use aya::maps::MapInfo;
use aya::maps::lpm_trie::Key as LpmKey;
use aya::{Ebpf, EbpfLoader};
use lb_common::maps::{
    BACKEND_STATS, BACKENDS, FLOW_INSERTS, FLOWS, MAGLEV, POLICY_STATS, POOL_TABLES, SETTINGS,
    SOURCE_RULES, STATS, SYN_GUARD, TENANT_GUARD, TENANT_LIMITS, VIP_ADDRS, VIP_STATS, VIPS,
};
use lb_common::{
    Backend, Flow, FlowKey, PolicyCounters, Settings, SourceRule, SourceRuleKey, TenantLimit,
    TrafficCounters, Vip, VipKey,
};
use tracing::warn;

use super::{DataplaneError, Limits};

/// Prefix of link pins; the interface name follows.
const LINK_PREFIX: &str = "link_";

/// Every map xlbd pins, with the key and value sizes this build expects.
pub const PINNED_MAPS: [(&str, usize, usize); 16] = [
    (VIPS, size_of::<VipKey>(), size_of::<Vip>()),
    (VIP_ADDRS, size_of::<u32>(), size_of::<u64>()),
    (BACKENDS, size_of::<u32>(), size_of::<Backend>()),
    (MAGLEV, size_of::<u32>(), size_of::<u32>()),
    (FLOWS, size_of::<FlowKey>(), size_of::<Flow>()),
    (SETTINGS, size_of::<u32>(), size_of::<Settings>()),
    (STATS, size_of::<u32>(), size_of::<u64>()),
    (SYN_GUARD, size_of::<u32>(), size_of::<u64>()),
    (FLOW_INSERTS, size_of::<u32>(), size_of::<u64>()),
    (VIP_STATS, size_of::<u32>(), size_of::<TrafficCounters>()),
    (
        BACKEND_STATS,
        size_of::<u32>(),
        size_of::<TrafficCounters>(),
    ),
    (POOL_TABLES, size_of::<u32>(), size_of::<Vip>()),
    (
        SOURCE_RULES,
        size_of::<LpmKey<SourceRuleKey>>(),
        size_of::<SourceRule>(),
    ),
    (TENANT_LIMITS, size_of::<u32>(), size_of::<TenantLimit>()),
    (TENANT_GUARD, size_of::<u32>(), size_of::<u64>()),
    (POLICY_STATS, size_of::<u32>(), size_of::<PolicyCounters>()),
];

/// The directory on bpffs that holds one xlbd's pins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinDir {
    root: PathBuf,
}

impl PinDir {
    /// The pin directory at `root` (not created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of the pin of map `name`.
    pub fn map(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Path of the pin of the XDP link on `interface`.
    pub fn link(&self, interface: &str) -> PathBuf {
        self.root.join(format!("{LINK_PREFIX}{interface}"))
    }

    /// Whether any map of ours is pinned here, so a data plane is running.
    pub fn has_maps(&self) -> bool {
        PINNED_MAPS
            .iter()
            .any(|(name, _, _)| self.map(name).exists())
    }

    /// Interfaces that have a link pinned here.
    ///
    /// # Errors
    ///
    /// When the directory exists but cannot be read.
    pub fn pinned_links(&self) -> io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut interfaces = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(interface) = name.strip_prefix(LINK_PREFIX) {
                interfaces.push(interface.to_owned());
            }
        }
        interfaces.sort();
        Ok(interfaces)
    }

    /// Creates the directory (bpffs allows `mkdir`).
    ///
    /// # Errors
    ///
    /// When it cannot be created, typically because bpffs is not mounted.
    pub fn create(&self) -> Result<(), DataplaneError> {
        let not_bpffs = || DataplaneError::NotBpffs {
            path: self.root.clone(),
        };
        std::fs::create_dir_all(&self.root).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => not_bpffs(),
            _ => DataplaneError::PinDir {
                path: self.root.clone(),
                source,
            },
        })?;
        if !is_bpffs(&self.root) {
            return Err(not_bpffs());
        }
        Ok(())
    }
}

/// An exclusive lock on a pin directory, held while an xlbd owns it;
/// released when dropped (or when the process dies).
#[derive(Debug)]
pub struct PinLock {
    _dir: std::fs::File,
}

impl PinDir {
    /// Takes the lock that keeps two xlbd from writing one set of maps.
    ///
    /// # Errors
    ///
    /// [`DataplaneError::Busy`] when another process holds it.
    pub fn lock(&self) -> Result<PinLock, DataplaneError> {
        use std::os::fd::AsRawFd as _;

        let dir = std::fs::File::open(&self.root).map_err(|source| DataplaneError::PinDir {
            path: self.root.clone(),
            source,
        })?;
        // SAFETY: flock(2) on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(DataplaneError::Busy {
                path: self.root.clone(),
            });
        }
        Ok(PinLock { _dir: dir })
    }
}

/// Loads the `xlb` object with every map opened from its pin, or created
/// and pinned when there is none, FLOWS sized `flow_capacity` and the
/// id-indexed maps sized for `limits`.
///
/// # Errors
///
/// When a pinned map does not match this build's types, or aya fails to
/// create, pin or load.
pub fn load_object(
    pins: &PinDir,
    object: &[u8],
    flow_capacity: u32,
    limits: Limits,
) -> Result<Ebpf, DataplaneError> {
    pins.create()?;
    check_pinned_maps(pins, flow_capacity, limits)?;

    let paths: Vec<(&'static str, PathBuf)> = PINNED_MAPS
        .iter()
        .map(|(name, _, _)| (*name, pins.map(name)))
        .collect();
    let mut loader = EbpfLoader::new();
    loader.map_max_entries(FLOWS, flow_capacity);
    limits.size_maps(&mut loader);
    for (name, path) in &paths {
        loader.map_pin_path(name, path.as_path());
    }
    loader.load(object).map_err(DataplaneError::Load)
}

/// Refuses pinned maps whose key or value size differs from this build's
/// (an incompatible upgrade would corrupt them), and warns when FLOWS was
/// created with another capacity, or the id-indexed maps for other limits,
/// than the config now asks for.
fn check_pinned_maps(
    pins: &PinDir,
    flow_capacity: u32,
    limits: Limits,
) -> Result<(), DataplaneError> {
    for (name, key_size, value_size) in PINNED_MAPS {
        let path = pins.map(name);
        if !path.exists() {
            continue;
        }
        let info =
            MapInfo::from_pin(&path).map_err(|source| DataplaneError::Map { name, source })?;
        let found = (info.key_size() as usize, info.value_size() as usize);
        if found != (key_size, value_size) {
            return Err(DataplaneError::IncompatiblePin {
                path,
                found,
                expected: (key_size, value_size),
            });
        }
        if name == FLOWS && info.max_entries() != flow_capacity {
            warn!(
                pinned = info.max_entries(),
                configured = flow_capacity,
                "flow table keeps its pinned capacity; `xlbd detach` and start again to resize"
            );
        }
        let limit = match name {
            VIP_STATS => Some(("vips", limits.vips)),
            BACKENDS => Some(("backends", limits.backends)),
            _ => None,
        };
        if let Some((key, configured)) = limit
            && info.max_entries() != configured
        {
            warn!(
                limit = key,
                pinned = info.max_entries(),
                configured,
                "maps keep their pinned limits; `xlbd detach` and start again to resize"
            );
        }
    }
    Ok(())
}

/// Removes every pin under `pins` (links first, so the program detaches),
/// then the directory. Missing pins are not an error.
///
/// # Errors
///
/// When a pin exists but cannot be removed.
pub fn remove_all(pins: &PinDir) -> io::Result<()> {
    for interface in pins.pinned_links()? {
        remove_link_pin(&pins.link(&interface))?;
    }
    for (name, _, _) in PINNED_MAPS {
        remove_if_present(&pins.map(name))?;
    }
    match std::fs::remove_dir(pins.root()) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// `BPF_FS_MAGIC` from include/uapi/linux/magic.h.
const BPF_FS_MAGIC: libc::c_long = 0xcafe_4a11;

fn is_bpffs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;

    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes only into `stat`, which is large enough, and
    // reads the NUL-terminated `path`, which outlives the call.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statfs(path.as_ptr(), &mut stat) };
    rc == 0 && stat.f_type as libc::c_long == BPF_FS_MAGIC
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// `BPF_OBJ_GET` and `BPF_LINK_DETACH` from include/uapi/linux/bpf.h.
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_LINK_DETACH: libc::c_long = 34;

/// `bpf_attr` for `BPF_OBJ_GET`. The kernel refuses nonzero bytes past
/// the fields it knows, so the tail padding is a field, zeroed.
#[repr(C)]
#[derive(Default)]
struct ObjGetAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
    path_fd: i32,
    _pad: u32,
}

/// Detaches the link pinned at `path` from its interface, then removes the
/// pin. Removing the pin alone detaches only when the kernel frees the
/// link, which it defers (and never does while a process holds it), so a
/// look at the interface right after could still find the program.
/// `BPF_LINK_DETACH` (Linux 5.9) detaches at once. A missing pin is not an
/// error.
///
/// # Errors
///
/// When the pin exists but cannot be opened, detached or removed.
pub fn remove_link_pin(path: &Path) -> io::Result<()> {
    use std::os::fd::{FromRawFd as _, OwnedFd};
    use std::os::unix::ffi::OsStrExt as _;

    let Ok(name) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "NUL in pin path",
        ));
    };
    let mut get = ObjGetAttr {
        pathname: name.as_ptr() as u64,
        ..ObjGetAttr::default()
    };
    // SAFETY: `get` is a valid `bpf_attr.obj_get` whose path pointer points
    // at a NUL-terminated string that outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET,
            &mut get as *mut ObjGetAttr,
            size_of::<ObjGetAttr>(),
        )
    };
    if fd < 0 {
        let error = io::Error::last_os_error();
        return match error.kind() {
            io::ErrorKind::NotFound => Ok(()),
            _ => Err(error),
        };
    }
    // SAFETY: the kernel just returned `fd` as a new descriptor we own.
    let link = unsafe { OwnedFd::from_raw_fd(fd as i32) };

    let mut detach: u32 = {
        use std::os::fd::AsRawFd as _;
        link.as_raw_fd() as u32
    };
    // SAFETY: `detach` is a valid `bpf_attr.link_detach` (one u32, the link
    // fd, which stays open across the call).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_DETACH,
            &mut detach as *mut u32,
            size_of::<u32>(),
        )
    };
    // A link already detached (its interface gone) answers ENOLINK.
    if rc < 0 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::ENOLINK) {
            return Err(error);
        }
    }
    remove_if_present(path)
}

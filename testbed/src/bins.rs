//! Finding the programs a testbed runs (xlb-backend, xlbd), and making sure
//! bpffs is mounted for pins.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The environment variable naming a directory that holds the binaries.
pub const BIN_DIR_ENV: &str = "XLB_BIN_DIR";

/// The backend server's binary name.
pub const BACKEND_BIN: &str = "xlb-backend";
/// The daemon's binary name.
pub const XLBD_BIN: &str = "xlbd";

/// Finds binary `name`: in `$XLB_BIN_DIR` if set, else beside the current
/// executable's target profile directory (target/debug or target/release;
/// test binaries live one level down, in target/debug/deps).
///
/// # Errors
/// When the binary is in none of those places; the message lists them.
pub fn locate(name: &str) -> Result<PathBuf> {
    let mut tried = Vec::new();
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        let path = Path::new(&dir).join(name);
        if path.is_file() {
            return Ok(path);
        }
        tried.push(path);
    }
    if let Some(dir) = profile_dir() {
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
        tried.push(path);
    }
    let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "binary {name} not found (looked at: {}); build it with `cargo build` or set {BIN_DIR_ENV}",
        if tried.is_empty() {
            "nowhere".to_owned()
        } else {
            tried.join(", ")
        }
    )
}

/// The target profile directory of the running executable.
fn profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    if dir
        .file_name()
        .is_some_and(|n| n == "deps" || n == "examples")
    {
        return dir.parent().map(Path::to_path_buf);
    }
    Some(dir.to_path_buf())
}

/// Resolves an explicit path (checked) or locates `name`.
///
/// # Errors
/// When the explicit path is not a file, or `locate` fails.
pub fn resolve(explicit: Option<&Path>, name: &str) -> Result<PathBuf> {
    match explicit {
        Some(path) if path.is_file() => Ok(path.to_path_buf()),
        Some(path) => bail!("binary {name} not found at {}", path.display()),
        None => locate(name),
    }
}

/// The bpffs magic number from statfs(2) (linux/magic.h BPF_FS_MAGIC).
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Mounts bpffs at `dir` unless one is already mounted there.
///
/// # Errors
/// When `dir` cannot be inspected or the mount fails.
pub fn ensure_bpffs(dir: &Path) -> Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    let c_dir = CString::new(dir.as_os_str().as_bytes()).context("bpffs path has a NUL byte")?;
    // SAFETY: statfs fills the zeroed struct we own; the path is NUL-terminated.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `stat` outlives the call.
    if unsafe { libc::statfs(c_dir.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("statfs {}", dir.display()));
    }
    #[expect(
        clippy::useless_conversion,
        reason = "f_type is narrower than i64 on some targets"
    )]
    let fs_type = i64::from(stat.f_type);
    if fs_type == BPF_FS_MAGIC {
        return Ok(());
    }

    let fstype = c"bpf";
    // SAFETY: all strings are NUL-terminated and live across the call; bpffs
    // takes no mount data.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            c_dir.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("mount bpffs at {}", dir.display()));
    }
    tracing::info!(dir = %dir.display(), "mounted bpffs");
    Ok(())
}

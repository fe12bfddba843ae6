//! Running code and commands inside a named network namespace.
//!
//! Commands enter only the network namespace (like `nsenter --net=...`), not
//! a fresh mount namespace as `ip netns exec` does: `ip netns exec` remounts
//! `/sys`, which hides the bpffs at `/sys/fs/bpf`, and xlbd must pin there.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;

use anyhow::{Context, Result, bail};

/// Where `ip netns add` keeps its namespace handles.
pub const NETNS_DIR: &str = "/run/netns";

/// The handle file of namespace `ns`.
pub fn netns_path(ns: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(ns)
}

fn open_netns(ns: &str) -> Result<File> {
    let path = netns_path(ns);
    File::open(&path).with_context(|| format!("open network namespace {ns} at {}", path.display()))
}

/// Moves the calling thread into namespace `file`.
fn enter(file: &File) -> io::Result<()> {
    // SAFETY: setns only reads the descriptor, which `file` keeps open, and
    // CLONE_NEWNET changes this thread's network namespace and nothing else.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs `f` on a fresh thread that has joined network namespace `ns`, so the
/// sockets it opens live there, and returns its result. A socket keeps its
/// namespace after the thread ends, so `f` may return it.
///
/// # Errors
/// When the namespace cannot be opened or entered. A panic in `f` is
/// resumed on the caller's thread.
pub fn in_ns<F, R>(ns: &str, f: F) -> Result<R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    let file = open_netns(ns)?;
    thread::scope(|scope| {
        let handle = scope.spawn(move || {
            enter(&file).with_context(|| format!("enter network namespace {ns}"))?;
            Ok(f())
        });
        match handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// A `Command` for `program` that runs inside network namespace `ns`.
///
/// # Errors
/// When the namespace cannot be opened.
pub fn command(ns: &str, program: impl AsRef<Path>) -> Result<Command> {
    let file = open_netns(ns)?;
    let mut command = Command::new(program.as_ref());
    // SAFETY: the hook runs in the forked child before exec and only calls
    // setns(2), which is async-signal-safe; `file` moves into the hook and
    // stays open until exec closes it (O_CLOEXEC).
    unsafe {
        command.pre_exec(move || enter(&file));
    }
    Ok(command)
}

/// Runs `args[0]` with the rest as arguments in namespace `ns`, waits for
/// it, and returns its standard output.
///
/// # Errors
/// When the program cannot start or exits with failure; the message names
/// the command line, the namespace, the exit status and the program's stderr.
pub fn exec(ns: &str, args: &[&str]) -> Result<String> {
    let Some((program, rest)) = args.split_first() else {
        bail!("no command given to run in namespace {ns}");
    };
    let mut command = command(ns, program)?;
    command.args(rest);
    let output = command
        .output()
        .with_context(|| format!("start `{}` in namespace {ns}", args.join(" ")))?;
    check_output(&format!("`{}` in namespace {ns}", args.join(" ")), output)
}

/// Runs `ip -n NS -batch -` with `lines` on stdin: one `ip` process for many
/// changes to one namespace (or to the root namespace when `ns` is `None`).
///
/// # Errors
/// When any line fails; `ip` stops at the first failing line and names it.
pub fn ip_batch(ns: Option<&str>, lines: &[String]) -> Result<()> {
    use std::io::Write as _;
    use std::process::Stdio;

    let mut command = Command::new("ip");
    if let Some(ns) = ns {
        command.args(["-n", ns]);
    }
    command.args(["-batch", "-"]);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let where_ = ns.map_or("the root namespace".to_owned(), |ns| {
        format!("namespace {ns}")
    });
    let mut child = command
        .spawn()
        .with_context(|| format!("start ip in {where_}"))?;

    let script = lines.join("\n") + "\n";
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .with_context(|| format!("feed ip in {where_}"))?;
    }
    let output = child
        .wait_with_output()
        .with_context(|| format!("wait for ip in {where_}"))?;
    let numbered: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| format!("  {}: ip {line}", i + 1))
        .collect();
    check_output(&format!("ip batch in {where_}"), output)
        .with_context(|| format!("ip batch lines were:\n{}", numbered.join("\n")))?;
    Ok(())
}

fn check_output(what: &str, output: Output) -> Result<String> {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    bail!(
        "{what} failed ({}): {}{}",
        output.status,
        stderr.trim(),
        stdout.trim()
    )
}

/// Writes sysctl values (`("net/ipv4/ip_forward", "1")`, paths below
/// /proc/sys) inside namespace `ns`. Net sysctls resolve against the writing
/// thread's namespace.
///
/// # Errors
/// When the namespace cannot be entered or a key cannot be written.
pub fn write_sysctls(ns: &str, values: &[(String, &str)]) -> Result<()> {
    in_ns(ns, || {
        for (key, value) in values {
            let path = Path::new("/proc/sys").join(key);
            std::fs::write(&path, value)
                .with_context(|| format!("set sysctl {key}={value} in namespace {ns}"))?;
        }
        Ok(())
    })?
}

/// The ids of processes whose network namespace is `ns`.
pub fn pids_in_netns(ns: &str) -> Vec<u32> {
    let Ok(target) = std::fs::metadata(netns_path(ns)) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino())
        })
        .collect()
}

/// Names of all namespaces under /run/netns.
pub fn list_netns() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect()
}

/// Runs `ip` with `args` in the root namespace (for `ip netns add/del` and
/// for creating veths straight into namespaces).
///
/// # Errors
/// When `ip` cannot start or fails; the message names the command and
/// carries `ip`'s stderr.
pub fn exec_ip(args: &[&str]) -> Result<String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .with_context(|| format!("start `ip {}`", args.join(" ")))?;
    check_output(&format!("`ip {}`", args.join(" ")), output)
}

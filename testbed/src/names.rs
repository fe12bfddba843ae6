//! Unique names for one testbed, and recognising the names of dead runs.
//!
//! A prefix is "x", the creating process id as 5 base-36 digits, then a
//! per-process counter in base 36: `x02n9c0`. Namespaces are `PREFIX-sw`,
//! `PREFIX-cl`, `PREFIX-rt`, `PREFIX-lb`, `PREFIX-b1`...; the pin directory
//! is `/sys/fs/bpf/xlb-test-PREFIX`. The pid in the name lets
//! `cleanup_stale` tell leftovers of dead runs from live testbeds.

use std::sync::atomic::{AtomicU32, Ordering};

const PID_DIGITS: usize = 5;
const MAX_COUNTER_DIGITS: usize = 4;

/// The directory holding every testbed's pin directory.
pub const BPFFS_ROOT: &str = "/sys/fs/bpf";
/// The name of a testbed's pin directory below `BPFFS_ROOT`, before the prefix.
pub const PIN_DIR_PREFIX: &str = "xlb-test-";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh prefix for this process: unique among the testbeds it creates.
pub fn new_prefix() -> String {
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = to_base36(std::process::id());
    format!("x{pid:0>PID_DIGITS$}{}", to_base36(counter))
}

/// The creating pid encoded in a testbed prefix, if `prefix` is one.
pub fn prefix_pid(prefix: &str) -> Option<u32> {
    let digits = prefix.strip_prefix('x')?;
    let counter_len = digits.len().checked_sub(PID_DIGITS)?;
    let base36 = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    };
    if !(1..=MAX_COUNTER_DIGITS).contains(&counter_len) || !base36(digits) {
        return None;
    }
    u32::from_str_radix(&digits[..PID_DIGITS], 36).ok()
}

/// Splits a namespace name `PREFIX-ROLE` made by a testbed into its prefix
/// and creating pid; `None` for any other name.
pub fn parse_netns(name: &str) -> Option<(&str, u32)> {
    let (prefix, role) = name.split_once('-')?;
    let backend = role
        .strip_prefix('b')
        .is_some_and(|n| n.parse::<usize>().is_ok());
    if !matches!(role, "sw" | "cl" | "rt" | "lb") && !backend {
        return None;
    }
    Some((prefix, prefix_pid(prefix)?))
}

/// Whether process `pid` still exists.
pub fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn to_base36(mut n: u32) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_carry_the_pid_and_differ_per_call() {
        let a = new_prefix();
        let b = new_prefix();
        assert_ne!(a, b);
        assert_eq!(prefix_pid(&a), Some(std::process::id()));
        assert!(a.len() <= 10, "prefix {a} too long");
    }

    #[test]
    fn only_testbed_namespace_names_parse() {
        assert_eq!(parse_netns("x0000a0-b12"), Some(("x0000a0", 10)));
        assert_eq!(parse_netns("x0000a0-lb"), Some(("x0000a0", 10)));
        assert_eq!(parse_netns("x0000a0-foo"), None);
        assert_eq!(parse_netns("xlb-test-lb"), None);
        assert_eq!(parse_netns("x0000A0-lb"), None);
        assert_eq!(parse_netns("x0000a-lb"), None);
    }
}

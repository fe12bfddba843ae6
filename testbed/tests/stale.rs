//! `cleanup_stale` removes what dead runs left behind. Needs root; never
//! skips.

use std::path::Path;
use std::time::{Duration, Instant};

use xlb_testbed::{bins, cleanup_stale, names, netns};

/// A prefix whose pid (base 36 "zzzzz", over 60 million) is above any
/// pid_max, so its run is always dead.
const DEAD_PREFIX: &str = "xzzzzz0";

#[test]
fn cleanup_stale_removes_namespaces_pins_and_processes_of_dead_runs() {
    assert!(names::prefix_pid(DEAD_PREFIX).is_some_and(|pid| !names::pid_alive(pid)));
    let ns = format!("{DEAD_PREFIX}-lb");
    netns::exec_ip(&["netns", "add", &ns]).expect("add a stale namespace");
    let mut leftover = netns::command(&ns, "sleep")
        .expect("command in the stale namespace")
        .arg("30")
        .spawn()
        .expect("start a process in the stale namespace");
    bins::ensure_bpffs(Path::new(names::BPFFS_ROOT)).expect("bpffs");
    let pin_dir =
        Path::new(names::BPFFS_ROOT).join(format!("{}{DEAD_PREFIX}", names::PIN_DIR_PREFIX));
    std::fs::create_dir_all(pin_dir.join("decap-b1")).expect("make a stale pin dir");
    let live_ns = format!("{}-lb", names::new_prefix());
    netns::exec_ip(&["netns", "add", &live_ns]).expect("add a live namespace");

    let report = cleanup_stale().expect("cleanup");

    let still_there = netns::list_netns();
    let live_kept = still_there.contains(&live_ns);
    netns::exec_ip(&["netns", "del", &live_ns]).expect("delete the live namespace");
    assert!(report.namespaces.contains(&ns), "report: {report:?}");
    assert!(
        !still_there.contains(&ns),
        "stale namespace {ns} left behind"
    );
    assert!(
        live_kept,
        "namespace {live_ns} of this live process was removed"
    );
    assert!(
        !pin_dir.exists(),
        "stale pin dir {} left behind",
        pin_dir.display()
    );

    let deadline = Instant::now() + Duration::from_secs(2);
    while leftover.try_wait().expect("poll leftover").is_none() {
        assert!(
            Instant::now() < deadline,
            "process in the stale namespace still runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

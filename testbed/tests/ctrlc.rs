//! Ctrl-C tears down live testbeds and exits 130. The test runs itself
//! again as a child that builds a testbed and waits; the parent interrupts
//! it. Needs root; never skips.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use xlb_testbed::{Testbed, TestbedOptions, netns};

const CHILD_ENV: &str = "XLB_TESTBED_CTRLC_CHILD";
const TEST_NAME: &str = "ctrl_c_tears_down_live_testbeds_and_exits_130";

#[test]
fn ctrl_c_tears_down_live_testbeds_and_exits_130() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let testbed = Testbed::new(TestbedOptions {
            backends: 1,
            backend_bin: Some(PathBuf::from(env!("CARGO_BIN_EXE_xlb-backend"))),
            ..Default::default()
        })
        .expect("child testbed builds");
        println!("PREFIX={}", testbed.prefix());
        std::thread::sleep(Duration::from_secs(30));
        panic!("child was not interrupted within 30 s");
    }

    let exe = std::env::current_exe().expect("test executable");
    let mut child = Command::new(exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start child test");
    let stdout = child.stdout.take().expect("child stdout");
    let prefix = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        // libtest prints "test NAME ... " on the same line first.
        .find_map(|line| line.split_once("PREFIX=").map(|(_, p)| p.trim().to_owned()))
        .expect("child reports its testbed prefix");
    let alive = netns::list_netns()
        .into_iter()
        .filter(|ns| ns.starts_with(&prefix))
        .count();
    assert_eq!(alive, 5, "child testbed namespaces before Ctrl-C");

    // SAFETY: kill(2) on the pid of a child this test spawned and has not
    // reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = child.wait().expect("wait for child");

    assert_eq!(status.code(), Some(130), "child exit status");
    let left: Vec<String> = netns::list_netns()
        .into_iter()
        .filter(|ns| ns.starts_with(&prefix))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "namespaces left after Ctrl-C");
    let pin_dir = PathBuf::from(format!("/sys/fs/bpf/xlb-test-{prefix}"));
    assert!(
        !pin_dir.exists(),
        "pin dir {} left after Ctrl-C",
        pin_dir.display()
    );
}

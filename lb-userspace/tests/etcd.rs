//! etcd as the config source, against a real etcd (Debian's etcd-server)
//! that each test starts on loopback with its own ports and data
//! directory, killed and removed on drop. The daemon test runs etcd and
//! xlbd in a network namespace of their own; the test talks to etcd from
//! a thread that joined that namespace. Needs root; never skips.

mod etcd_server;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use etcd_server::{Etcd, TIMEOUT, in_netns, wait_for};
use xlb::config::Config;
use xlb::daemon::DaemonStatus;
use xlb::etcd::{Update, WatchEvent, source};

const XLBD: &str = env!("CARGO_BIN_EXE_xlbd");
const XLBCTL: &str = env!("CARGO_BIN_EXE_xlbctl");
const KEY: &str = "/xlb/config";

#[test]
fn the_client_reads_writes_and_watches_a_key() {
    let etcd = Etcd::start(None);
    let client = etcd.client();
    assert_eq!(client.get(KEY).unwrap().value, None);
    let first = client.put(KEY, b"one").unwrap();
    let got = client.get(KEY).unwrap();
    assert_eq!(
        (got.value.as_deref(), got.revision),
        (Some(&b"one"[..]), first)
    );

    let mut watch = client.watch(KEY, first + 1).unwrap();
    let second = client.put(KEY, b"two").unwrap();
    let events = watch.changes().unwrap();
    let expected = WatchEvent::Put {
        value: b"two".to_vec(),
        revision: second,
    };
    assert_eq!(events, [expected]);
}

#[test]
fn a_watch_from_a_compacted_revision_is_reported_as_compacted() {
    let etcd = Etcd::start(None);
    let client = etcd.client();
    let old = client.put(KEY, b"one").unwrap();
    client.put(KEY, b"two").unwrap();
    let last = client.put(KEY, b"three").unwrap();
    client.compact(last).unwrap();
    let mut watch = client.watch(KEY, old).unwrap();
    assert_eq!(
        watch.changes().unwrap(),
        [WatchEvent::Compacted {
            compact_revision: last
        }]
    );
}

fn next_update(updates: &mut tokio::sync::mpsc::UnboundedReceiver<Update>) -> Update {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match updates.try_recv() {
            Ok(update) => return update,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("no update from the etcd source: {e}"),
        }
    }
}

fn expect_config(updates: &mut tokio::sync::mpsc::UnboundedReceiver<Update>, want: &str) {
    match next_update(updates) {
        Update::Config { text, .. } => assert_eq!(text, want),
        other => panic!("expected the config {want:?}, got {other:?}"),
    }
}

#[test]
fn the_source_reads_again_when_etcd_compacted_while_it_was_away() {
    let mut etcd = Etcd::start(None);
    let client = etcd.client();
    client.put(KEY, b"v1").unwrap();
    let mut updates = source::spawn(client.clone(), KEY.to_owned());
    expect_config(&mut updates, "v1");
    client.put(KEY, b"v2").unwrap();
    expect_config(&mut updates, "v2");

    etcd.kill();
    // Five failures in a row put the source's back-off at 4 s: time to
    // restart etcd, write twice and compact before it retries.
    for _ in 0..5 {
        let update = next_update(&mut updates);
        assert!(
            matches!(update, Update::Unreachable { .. }),
            "got {update:?}"
        );
    }
    etcd.run();
    client.put(KEY, b"v3a").unwrap();
    let last = client.put(KEY, b"v3").unwrap();
    client.compact(last).unwrap();
    // Resuming after v2 fails as compacted, so the source reads the key
    // again: it sees v3 and skips v3a, which only the history had.
    loop {
        match next_update(&mut updates) {
            Update::Config { text, .. } => {
                assert_eq!(text, "v3", "the source resumed from compacted history");
                break;
            }
            Update::Unreachable { .. } => continue,
            Update::Unusable { reason } => panic!("unexpected: {reason}"),
        }
    }
    client.put(KEY, b"v4").unwrap();
    expect_config(&mut updates, "v4");
}

/// A namespace with a veth pair for xlbd to attach to.
struct Bed {
    ns: String,
    dir: PathBuf,
    interface: String,
    xlbd: Option<Child>,
}

impl Bed {
    fn new() -> Self {
        let pid = std::process::id();
        let bed = Bed {
            ns: format!("xlb-etcd-{pid}"),
            dir: std::env::temp_dir().join(format!("xlb-etcd-bed-{pid}")),
            interface: format!("xe{}", pid % 1_000_000),
            xlbd: None,
        };
        fs::create_dir_all(&bed.dir).unwrap();
        let peer = format!("{}p", bed.interface);
        sh(&["ip", "netns", "add", &bed.ns]);
        let link = [
            "link",
            "add",
            &bed.interface,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ];
        sh(&[&["ip", "-n", &bed.ns][..], &link[..]].concat());
        for link in ["lo", &bed.interface, &peer] {
            sh(&["ip", "-n", &bed.ns, "link", "set", link, "up"]);
        }
        bed
    }

    fn config(&self, weight: u32) -> String {
        format!(
            "interfaces: [{{name: {}}}]\npin_path: /sys/fs/bpf/xlb-etcd-{}\n\
             control_socket: {}\nmetrics_listen: 127.0.0.1:0\n\
             encap: {{source_v4: 10.255.0.1}}\nvips:\n  - {{name: web, address: 10.0.0.10, \
             port: 80, protocol: tcp, pool: web, table_size: 251}}\npools:\n  web:\n    \
             backends:\n      - {{address: 10.1.0.1, weight: {weight}}}\n      - \
             {{address: 10.1.0.2}}\n",
            self.interface,
            std::process::id(),
            self.dir.join("xlbd.sock").display(),
        )
    }

    fn in_ns(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/run/netns/{}", self.ns))
            .arg(program);
        command
    }

    fn push(&self, etcd: &Etcd, text: &str) -> Output {
        let file = self.dir.join("push.yaml");
        fs::write(&file, text).unwrap();
        let endpoint = etcd.endpoint();
        let args = [
            "config",
            "push",
            file.to_str().unwrap(),
            "--etcd",
            &endpoint,
        ];
        self.in_ns(XLBCTL)
            .args(args)
            .args(["--etcd-key", KEY])
            .output()
            .unwrap()
    }

    fn status(&self) -> Option<DaemonStatus> {
        DaemonStatus::read(&self.dir.join("status.json")).ok()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("xlbd.log")).unwrap_or_default()
    }

    fn wait_status(&self, what: &str, mut done: impl FnMut(&DaemonStatus) -> bool) -> DaemonStatus {
        let ok = wait_for(|| self.status().is_some_and(|s| done(&s)));
        assert!(ok, "{what}: {:?}\n{}", self.status(), self.log());
        self.status().unwrap()
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        if let Some(child) = &mut self.xlbd {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = fs::remove_dir_all(format!("/sys/fs/bpf/xlb-etcd-{}", std::process::id()));
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("running a command");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    out
}

fn version(text: &str) -> String {
    Config::from_str(text, "<test>").unwrap().config.version()
}

#[test]
fn xlbd_follows_the_config_in_etcd_and_keeps_the_last_good_one() {
    let mut bed = Bed::new();
    let mut etcd = Etcd::start(Some(&bed.ns));
    let pushed = bed.push(&etcd, &bed.config(1));
    assert!(
        pushed.status.success(),
        "push: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );

    let log = fs::File::create(bed.dir.join("xlbd.log")).unwrap();
    let endpoint = etcd.endpoint();
    let status_file = bed.dir.join("status.json");
    let args = [
        "run",
        "--etcd",
        &endpoint,
        "--etcd-key",
        KEY,
        "--status-file",
    ];
    let child = bed
        .in_ns(XLBD)
        .args(args)
        .arg(&status_file)
        .stderr(log)
        .spawn()
        .unwrap();
    bed.xlbd = Some(child);
    let v1 = version(&bed.config(1));
    bed.wait_status("started on the config from etcd", |s| {
        s.config_version == v1
    });

    let v2 = version(&bed.config(3));
    assert!(bed.push(&etcd, &bed.config(3)).status.success());
    let status = bed.wait_status("followed a push", |s| s.config_version == v2);
    assert!(status.config.starts_with("etcd:"), "{:?}", status.config);

    let refused = bed.push(&etcd, "vips: [");
    assert!(!refused.status.success(), "xlbctl pushed an invalid config");
    let failed_before = status.reloads_failed_total;
    let invalid = "interfaces: [{name: eth0}]\nvips: 7\n";
    in_netns(Some(&bed.ns), || {
        etcd.client().put(KEY, invalid.as_bytes()).unwrap()
    });
    let status = bed.wait_status("refused invalid YAML", |s| {
        s.reloads_failed_total > failed_before
    });
    assert_eq!(status.config_version, v2, "the last good config stays");
    let error = status.last_reload.and_then(|r| r.error).unwrap_or_default();
    assert!(
        error.contains("etcd:/xlb/config@") && error.contains(":2:"),
        "{error}"
    );

    etcd.kill();
    bed.wait_status("counted etcd going away", |s| {
        s.config_source_errors_total > 0
    });
    etcd.run();
    let v3 = version(&bed.config(5));
    assert!(bed.push(&etcd, &bed.config(5)).status.success());
    bed.wait_status("followed a push after etcd came back", |s| {
        s.config_version == v3
    });
    let running = bed.xlbd.as_mut().unwrap().try_wait().unwrap().is_none();
    assert!(running, "xlbd exited:\n{}", bed.log());
}

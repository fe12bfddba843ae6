//! A running xlbd for the xlbctl and metrics tests: namespaces, a veth
//! pair, a pin directory, a control socket and a metrics port of its own,
//! all removed on drop (xlbd killed first).
//!
//! xlbd runs under `nsenter --net`, not `ip netns exec`, which would mount
//! a fresh /sys and hide the host's bpffs.

#![allow(dead_code, reason = "each test binary uses part of the bed")]

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use xlb::daemon::DaemonStatus;
use xlb::dataplane::{Maps, PinDir};

pub const XLBD: &str = env!("CARGO_BIN_EXE_xlbd");
pub const XLBCTL: &str = env!("CARGO_BIN_EXE_xlbctl");
pub const TABLE_SIZE: u32 = 1021;
pub const BACKENDS: [&str; 3] = ["10.1.0.1", "10.1.0.2", "10.1.0.3"];
/// The port of the default `metrics_listen` (127.0.0.1:9641), which the
/// bed's config leaves out so that every bed runs the default.
pub const METRICS_PORT: u16 = 9641;
const TIMEOUT: Duration = Duration::from_secs(60);

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Bed {
    pub ns: String,
    peer_ns: String,
    pub interface: String,
    pub pins: PathBuf,
    pub dir: PathBuf,
    daemon: Option<Child>,
}

impl Bed {
    /// Makes the namespaces and starts xlbd with backends of `weights`.
    pub fn start(prefix: &str, weights: [u32; 3]) -> Self {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tag = format!("{prefix}{pid}-{n}");
        let mut bed = Bed {
            ns: format!("xc-{tag}"),
            peer_ns: format!("xcp-{tag}"),
            interface: format!("{prefix}{}", pid % 100_000 * 10 + n),
            pins: PathBuf::from(format!("/sys/fs/bpf/xlbctl-test-{tag}")),
            dir: std::env::temp_dir().join(format!("xlbctl-test-{tag}")),
            daemon: None,
        };
        fs::create_dir_all(&bed.dir).expect("creating the scratch directory");
        let peer = format!("{}p", bed.interface);
        sh(&["ip", "netns", "add", &bed.ns]);
        sh(&["ip", "netns", "add", &bed.peer_ns]);
        sh(&[
            "ip",
            "-n",
            &bed.ns,
            "link",
            "add",
            &bed.interface,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            &bed.peer_ns,
        ]);
        sh(&["ip", "-n", &bed.ns, "link", "set", &bed.interface, "up"]);
        sh(&["ip", "-n", &bed.ns, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &bed.peer_ns, "link", "set", &peer, "up"]);
        bed.write_config(weights);
        bed.run_daemon();
        bed
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.yaml")
    }

    pub fn status_path(&self) -> PathBuf {
        self.dir.join("status.json")
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("xlbd.sock")
    }

    pub fn write_config(&self, weights: [u32; 3]) {
        let [a, b, c] = weights;
        let text = format!(
            "interfaces:
  - name: {iface}
    mode: native
pin_path: {pins}
control_socket: {socket}
flow_table_size: 4096
encap:
  source_v4: 10.255.0.0/24
vips:
  - name: web
    address: 10.0.0.10
    port: 80
    protocol: tcp
    pool: web
    table_size: {TABLE_SIZE}
  - name: dns
    address: 10.0.0.10
    port: 53
    protocol: udp
    pool: web
    table_size: {TABLE_SIZE}
pools:
  web:
    backends:
      - address: {b0}
        weight: {a}
      - address: {b1}
        weight: {b}
      - address: {b2}
        weight: {c}
",
            iface = self.interface,
            pins = self.pins.display(),
            socket = self.socket_path().display(),
            b0 = BACKENDS[0],
            b1 = BACKENDS[1],
            b2 = BACKENDS[2],
        );
        fs::write(self.config_path(), text).expect("writing the config");
    }

    fn run_daemon(&mut self) {
        let log = fs::File::create(self.dir.join("xlbd.log")).expect("creating the log");
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns))
            .args([XLBD, "run", "--config"])
            .arg(self.config_path())
            .arg("--status-file")
            .arg(self.status_path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning xlbd");
        let pid = child.id();
        self.daemon = Some(child);
        let ready =
            wait_for(|| self.status().is_some_and(|s| s.pid == pid) && self.socket_path().exists());
        assert!(ready, "xlbd did not become ready:\n{}", self.log());
    }

    pub fn status(&self) -> Option<DaemonStatus> {
        DaemonStatus::read(&self.status_path()).ok()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("xlbd.log")).unwrap_or_default()
    }

    pub fn maps(&self) -> Maps {
        Maps::open_pinned(&PinDir::new(&self.pins)).expect("opening the pinned maps")
    }

    /// Runs xlbctl against this bed's status file.
    pub fn xlbctl(&self, args: &[&str]) -> Output {
        Command::new(XLBCTL)
            .arg("--status-file")
            .arg(self.status_path())
            .args(args)
            .output()
            .expect("running xlbctl")
    }

    /// Runs xlbctl, asserts it exits 0, and parses its stdout as JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.xlbctl(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "xlbctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "xlbctl {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Runs `f` on a thread inside the bed's namespace.
    fn in_ns<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let ns = format!("/run/netns/{}", self.ns);
        std::thread::spawn(move || {
            let file = fs::File::open(&ns).expect("opening the namespace");
            use std::os::fd::AsRawFd as _;
            // SAFETY: setns(2) on a namespace fd we hold; it moves only
            // this thread, which ends after `f`.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "entering the namespace");
            f()
        })
        .join()
        .expect("the thread in the namespace")
    }

    /// Sends `request` as written to the metrics endpoint from inside the
    /// namespace, and returns the whole answer (read until xlbd closes).
    pub fn metrics_request(&self, request: &str) -> String {
        use std::io::{Read as _, Write as _};

        let request = request.to_owned();
        self.in_ns(move || {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", METRICS_PORT))
                .expect("connecting to the metrics endpoint");
            stream.set_read_timeout(Some(TIMEOUT)).expect("a timeout");
            stream.write_all(request.as_bytes()).expect("sending");
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        })
    }

    /// GET `path` of the metrics endpoint from inside the namespace.
    pub fn scrape(&self, path: &str) -> (u16, String) {
        let url = format!("http://127.0.0.1:{METRICS_PORT}{path}");
        self.in_ns(move || {
            let agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .new_agent();
            let mut response = agent
                .get(&url)
                .call()
                .expect("scraping the metrics endpoint");
            let code = response.status().as_u16();
            (
                code,
                response
                    .body_mut()
                    .read_to_string()
                    .expect("reading the body"),
            )
        })
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        if let Some(child) = &mut self.daemon {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.peer_ns])
            .status();
        let _ = fs::remove_dir_all(&self.pins);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("running a command");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

//! VIP announcement end to end: the real xlbd in a namespace of its own,
//! with an `announce` table, TCP health checks against listeners on the
//! namespace's `lo`, and the table read with `ip route`. The route must be
//! there while a backend is healthy and gone when every backend is down,
//! when xlbd stops, and when its interface (its data plane) goes away.
//! Needs root; never skips.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd as _;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const XLBD: &str = env!("CARGO_BIN_EXE_xlbd");
const TABLE: u32 = 4242;
const VIP: &str = "10.0.0.10";
const BACKENDS: [&str; 2] = ["10.1.0.1", "10.1.0.2"];
const CHECK_PORT: u16 = 8080;
const TIMEOUT: Duration = Duration::from_secs(30);

/// A namespace with a veth pair and a scratch directory; on drop, any
/// xlbd is killed and everything removed.
struct Bed {
    ns: String,
    interface: String,
    pins: PathBuf,
    dir: PathBuf,
    xlbd: Option<Child>,
}

impl Bed {
    fn new() -> Self {
        let pid = std::process::id();
        let bed = Bed {
            ns: format!("xlb-ann-{pid}"),
            interface: format!("xa{}", pid % 1_000_000),
            pins: PathBuf::from(format!("/sys/fs/bpf/xlb-ann-{pid}")),
            dir: std::env::temp_dir().join(format!("xlb-ann-{pid}")),
            xlbd: None,
        };
        fs::create_dir_all(&bed.dir).expect("creating the scratch directory");
        sh(&["ip", "netns", "add", &bed.ns]);
        let peer = format!("{}p", bed.interface);
        bed.ip(&[
            "link",
            "add",
            &bed.interface,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ]);
        for link in ["lo", &bed.interface, &peer] {
            bed.ip(&["link", "set", link, "up"]);
        }
        for backend in BACKENDS {
            bed.ip(&["addr", "add", &format!("{backend}/32"), "dev", "lo"]);
        }
        fs::write(bed.dir.join("config.yaml"), bed.config()).expect("writing the config");
        bed
    }

    fn ip(&self, args: &[&str]) -> Output {
        let mut all = vec!["ip", "-n", &self.ns];
        all.extend(args);
        sh(&all)
    }

    fn config(&self) -> String {
        format!(
            "interfaces: [{{name: {iface}}}]
pin_path: {pins}
control_socket: {socket}
metrics_listen: 127.0.0.1:0
encap: {{source_v4: 10.255.0.1}}
announce: {{table: {TABLE}}}
vips:
  - {{name: web, address: {VIP}, port: 80, protocol: tcp, pool: web, table_size: 251}}
pools:
  web:
    health_check: {{kind: tcp, port: {CHECK_PORT}, interval: 200ms, timeout: 100ms,
                    rise: 1, fall: 1}}
    backends:
      - address: {b0}
      - address: {b1}
",
            iface = self.interface,
            pins = self.pins.display(),
            socket = self.dir.join("xlbd.sock").display(),
            b0 = BACKENDS[0],
            b1 = BACKENDS[1],
        )
    }

    fn start(&mut self) {
        let log = fs::File::create(self.dir.join("xlbd.log")).expect("creating the log");
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns))
            .arg(XLBD)
            .arg("run")
            .arg("--config")
            .arg(self.dir.join("config.yaml"))
            .arg("--status-file")
            .arg(self.dir.join("status.json"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning xlbd");
        self.xlbd = Some(child);
    }

    fn stop(&mut self) {
        let mut child = self.xlbd.take().expect("xlbd runs");
        // SAFETY: kill(2) has no memory effects; the pid is our child.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "signalling xlbd");
        let status = child.wait().expect("waiting for xlbd");
        assert!(
            status.success(),
            "xlbd exited with {status}:\n{}",
            self.log()
        );
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("xlbd.log")).unwrap_or_default()
    }

    fn announced(&self) -> bool {
        // An empty table does not exist, and `ip` then fails: not there.
        let out = Command::new("ip")
            .args(["-n", &self.ns, "route", "show", "table", &TABLE.to_string()])
            .output()
            .expect("running ip route");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|line| line.starts_with(&format!("{VIP} dev lo proto 251")))
    }

    fn wait_announced(&self, want: bool, why: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if self.announced() == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{why}: the vip route is {}there\n{}",
            if want { "not " } else { "" },
            self.log()
        );
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        if let Some(child) = &mut self.xlbd {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = fs::remove_dir_all(&self.pins);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// TCP listeners on the backends' check port inside the namespace,
/// accepting and closing until dropped.
struct Listeners {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Listeners {
    fn start(ns: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let path = format!("/run/netns/{ns}");
        let (ready, bound) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let netns = fs::File::open(&path).expect("opening the namespace");
            // SAFETY: setns(2) on a namespace fd only changes this thread.
            let rc = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let listeners: Vec<TcpListener> = BACKENDS
                .iter()
                .map(|b| {
                    let addr = SocketAddr::new(b.parse().unwrap(), CHECK_PORT);
                    let listener = TcpListener::bind(addr).expect("binding a listener");
                    listener.set_nonblocking(true).unwrap();
                    listener
                })
                .collect();
            ready.send(()).unwrap();
            while !flag.load(Ordering::SeqCst) {
                for listener in &listeners {
                    while listener.accept().is_ok() {}
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        bound.recv().expect("the listeners did not start");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
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

#[test]
fn the_vip_route_follows_backend_health_xlbd_and_its_data_plane() {
    let mut bed = Bed::new();
    let listeners = Listeners::start(&bed.ns);
    bed.start();
    bed.wait_announced(true, "healthy backends");

    drop(listeners);
    bed.wait_announced(false, "every backend down");
    let listeners = Listeners::start(&bed.ns);
    bed.wait_announced(true, "a backend back up");

    bed.stop();
    assert!(
        !bed.announced(),
        "xlbd stopped but left the vip route\n{}",
        bed.log()
    );

    bed.start();
    bed.wait_announced(true, "xlbd restarted onto its pinned data plane");
    bed.ip(&["link", "del", &bed.interface.clone()]);
    bed.wait_announced(false, "the interface running the data plane is gone");
    drop(listeners);
}

//! The fleet testbed: a router namespace and two LB namespaces, BIRD on
//! each, xlbd on each LB with its config from etcd. See `fleet.rs`.

#![allow(dead_code, reason = "each test file uses a part")]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use xlb::config::Config;
use xlb::daemon::DaemonStatus;

pub const XLBD: &str = env!("CARGO_BIN_EXE_xlbd");
pub const XLBCTL: &str = env!("CARGO_BIN_EXE_xlbctl");
pub const KEY: &str = "/xlb/config";
/// BGP sessions take a few seconds to come up.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// (router side, LB side) addresses of the two links.
pub const LINKS: [(&str, &str); 2] = [
    ("192.0.2.1", "192.0.2.11"),
    ("198.51.100.1", "198.51.100.12"),
];

pub const ROUTER_BIRD: &str = "router id 192.0.2.1;
protocol device { }
protocol kernel {
  merge paths yes;
  ipv4 { export all; import none; };
}
protocol bgp lb1 {
  local 192.0.2.1 as 64600;
  neighbor 192.0.2.11 as 64601;
  hold time 3; keepalive time 1;
  ipv4 { import all; export none; };
}
protocol bgp lb2 {
  local 198.51.100.1 as 64600;
  neighbor 198.51.100.12 as 64601;
  hold time 3; keepalive time 1;
  ipv4 { import all; export none; };
}
";

/// The router, two LB nodes, their processes; all removed on drop.
pub struct Fleet {
    /// The router's namespace.
    pub router: String,
    /// The LB nodes' namespaces.
    pub lbs: [String; 2],
    /// Scratch directory: configs, logs, status files.
    pub dir: PathBuf,
    birds: Vec<Child>,
    xlbds: [Option<Child>; 2],
    /// More namespaces to delete on drop.
    pub extra_namespaces: Vec<String>,
    /// Pin directories to remove on drop.
    pub extra_pins: Vec<String>,
}

impl Fleet {
    pub fn new() -> Self {
        let pid = std::process::id();
        let fleet = Fleet {
            router: format!("xlb-fl-rt-{pid}"),
            lbs: [format!("xlb-fl-lb1-{pid}"), format!("xlb-fl-lb2-{pid}")],
            dir: std::env::temp_dir().join(format!("xlb-fleet-{pid}")),
            birds: Vec::new(),
            xlbds: [None, None],
            extra_namespaces: Vec::new(),
            extra_pins: Vec::new(),
        };
        fs::create_dir_all(&fleet.dir).unwrap();
        sh(&["ip", "netns", "add", &fleet.router]);
        sh(&["ip", "-n", &fleet.router, "link", "set", "lo", "up"]);
        for (i, lb) in fleet.lbs.iter().enumerate() {
            let (router_addr, lb_addr) = LINKS[i];
            let side = format!("r{}", i + 1);
            sh(&["ip", "netns", "add", lb]);
            let peer = ["peer", "name", "eth0", "netns", lb];
            sh(&[
                &[
                    "ip",
                    "-n",
                    &fleet.router,
                    "link",
                    "add",
                    &side,
                    "type",
                    "veth",
                ][..],
                &peer,
            ]
            .concat());
            let rt = |args: &[&str]| sh(&[&["ip", "-n", &fleet.router][..], args].concat());
            let at = |args: &[&str]| sh(&[&["ip", "-n", lb.as_str()][..], args].concat());
            rt(&["addr", "add", &format!("{router_addr}/24"), "dev", &side]);
            rt(&["link", "set", &side, "up"]);
            at(&["addr", "add", &format!("{lb_addr}/24"), "dev", "eth0"]);
            at(&["link", "set", "eth0", "up"]);
            at(&["link", "set", "lo", "up"]);
            at(&["route", "add", "default", "via", router_addr]);
        }
        fleet
    }

    pub fn net(ns: &str) -> Command {
        let mut command = Command::new("nsenter");
        command.arg(format!("--net=/run/netns/{ns}"));
        command
    }

    pub fn start_bird(&mut self, ns: &str, config: &str, name: &str) {
        let path = self.dir.join(format!("{name}.conf"));
        fs::write(&path, config).unwrap();
        let socket = self.dir.join(format!("{name}.ctl"));
        let child = Self::net(ns)
            .args(["bird", "-f", "-c"])
            .arg(&path)
            .arg("-s")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting bird (is bird2 installed?)");
        self.birds.push(child);
    }

    /// Starts xlbd on LB `i` in a mount namespace of its own.
    pub fn start_xlbd(&mut self, i: usize, etcd: &str) {
        let status = self.status_file(i);
        let _ = fs::remove_file(&status);
        let script = format!(
            "mount -t bpf bpf /sys/fs/bpf && mkdir -p /run/xlb && \
             mount -t tmpfs tmpfs /run/xlb && \
             exec {XLBD} run --etcd {etcd} --etcd-key {KEY} --status-file {}",
            status.display()
        );
        let log = fs::File::create(self.dir.join(format!("xlbd{i}.log"))).unwrap();
        let child = Self::net(&self.lbs[i])
            .args([
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting xlbd");
        self.xlbds[i] = Some(child);
    }

    pub fn stop_xlbd(&mut self, i: usize) {
        let mut child = self.xlbds[i].take().expect("xlbd runs");
        // SAFETY: kill(2) has no memory effects; the pid is our child
        // (sh and unshare exec into xlbd).
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "signalling xlbd {i}");
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "xlbd {i} exited with {status}:\n{}",
            self.log(i)
        );
    }

    pub fn status_file(&self, i: usize) -> PathBuf {
        self.dir.join(format!("status{i}.json"))
    }

    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(self.dir.join(format!("xlbd{i}.log"))).unwrap_or_default()
    }

    pub fn push(&self, etcd: &str, text: &str) {
        let file = self.dir.join("push.yaml");
        fs::write(&file, text).unwrap();
        let out = Self::net(&self.lbs[0])
            .args([
                XLBCTL,
                "config",
                "push",
                file.to_str().unwrap(),
                "--etcd",
                etcd,
            ])
            .args(["--etcd-key", KEY])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "push failed: {stderr}");
    }

    /// The next hops of the router's route to `vip`.
    pub fn router_paths(&self, vip: &str) -> BTreeSet<String> {
        let out = sh(&[
            "ip",
            "-n",
            &self.router,
            "route",
            "show",
            &format!("{vip}/32"),
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let words: Vec<&str> = text.split_whitespace().collect();
        let vias = words
            .windows(2)
            .filter(|w| w[0] == "via")
            .map(|w| w[1].to_owned());
        vias.collect()
    }

    /// Waits until the router's next hops to `vip` are `want`; returns
    /// how long that took.
    pub fn wait_paths(&self, vip: &str, want: &[&str], why: &str) -> Duration {
        let started = Instant::now();
        let want: BTreeSet<String> = want.iter().map(|s| (*s).to_owned()).collect();
        let ok = wait(|| self.router_paths(vip) == want);
        let logs = format!("{}\n{}", self.log(0), self.log(1));
        assert!(
            ok,
            "{why}: router paths to {vip} are {:?}, not {want:?}\n{logs}",
            self.router_paths(vip)
        );
        started.elapsed()
    }

    pub fn wait_version(&self, i: usize, version: &str) {
        let path = self.status_file(i);
        let ok = wait(|| read_status(&path).is_some_and(|s| s.config_version == version));
        assert!(
            ok,
            "xlbd {i} did not run version {version}:\n{}",
            self.log(i)
        );
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in self.xlbds.iter_mut().flatten().chain(&mut self.birds) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self
            .lbs
            .iter()
            .chain([&self.router])
            .chain(&self.extra_namespaces)
        {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        for pin in &self.extra_pins {
            let _ = fs::remove_dir_all(pin);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub fn read_status(path: &Path) -> Option<DaemonStatus> {
    DaemonStatus::read(path).ok()
}

pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("running a command");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    out
}

pub fn wait(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The fleet config with VIPs 10.100.0.1..=`vips`.
pub fn config(vips: u8) -> String {
    let mut text = String::from(
        "interfaces: [{name: eth0}]\nmetrics_listen: 127.0.0.1:0\n\
         encap: {source_v4: 10.255.0.1}\nannounce: {table: 100}\nvips:\n",
    );
    for i in 1..=vips {
        text.push_str(&format!(
            "  - {{name: web{i}, address: 10.100.0.{i}, port: 80, protocol: tcp, pool: web, \
             table_size: 251}}\n"
        ));
    }
    text.push_str("pools:\n  web:\n    backends:\n");
    for k in 11..=13 {
        text.push_str(&format!("      - address: 10.0.0.{k}\n"));
    }
    text
}

/// The shipped LB config, pointed at link `i`.
pub fn lb_bird(i: usize) -> String {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/bird-lb.conf");
    let text = fs::read_to_string(shipped).expect("reading configs/bird-lb.conf");
    let (router_addr, lb_addr) = LINKS[i];
    text.replace("192.0.2.11", "LB_ADDR")
        .replace("192.0.2.1", router_addr)
        .replace("LB_ADDR", lb_addr)
}

pub fn version(text: &str) -> String {
    Config::from_str(text, "<test>").unwrap().config.version()
}

//! A fleet's control plane end to end: a router namespace running BIRD
//! (ECMP: `merge paths`) and etcd, and two LB namespaces each running xlbd
//! (config from etcd, `announce: {table: 100}`) and BIRD with the shipped
//! `configs/bird-lb.conf`. The router's kernel must hold a multipath route
//! to the VIP over both LB nodes, lose a node's path when its xlbd stops,
//! get it back when xlbd starts again, and a config pushed to etcd must
//! reach both nodes and their announcements.
//!
//! Each xlbd runs in a mount namespace of its own with a fresh bpffs and
//! /run/xlb, as if on its own machine, so both use the config's default
//! pin path and control socket. Needs root; never skips.

mod etcd_server;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use etcd_server::Etcd;
use xlb::config::Config;
use xlb::daemon::DaemonStatus;

const XLBD: &str = env!("CARGO_BIN_EXE_xlbd");
const XLBCTL: &str = env!("CARGO_BIN_EXE_xlbctl");
const KEY: &str = "/xlb/config";
/// BGP sessions take a few seconds to come up.
const TIMEOUT: Duration = Duration::from_secs(60);

/// (router side, LB side) addresses of the two links.
const LINKS: [(&str, &str); 2] = [
    ("192.0.2.1", "192.0.2.11"),
    ("198.51.100.1", "198.51.100.12"),
];

const ROUTER_BIRD: &str = "router id 192.0.2.1;
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
struct Fleet {
    router: String,
    lbs: [String; 2],
    dir: PathBuf,
    birds: Vec<Child>,
    xlbds: [Option<Child>; 2],
}

impl Fleet {
    fn new() -> Self {
        let pid = std::process::id();
        let fleet = Fleet {
            router: format!("xlb-fl-rt-{pid}"),
            lbs: [format!("xlb-fl-lb1-{pid}"), format!("xlb-fl-lb2-{pid}")],
            dir: std::env::temp_dir().join(format!("xlb-fleet-{pid}")),
            birds: Vec::new(),
            xlbds: [None, None],
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

    fn net(ns: &str) -> Command {
        let mut command = Command::new("nsenter");
        command.arg(format!("--net=/run/netns/{ns}"));
        command
    }

    fn start_bird(&mut self, ns: &str, config: &str, name: &str) {
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
    fn start_xlbd(&mut self, i: usize, etcd: &str) {
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

    fn stop_xlbd(&mut self, i: usize) {
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

    fn status_file(&self, i: usize) -> PathBuf {
        self.dir.join(format!("status{i}.json"))
    }

    fn log(&self, i: usize) -> String {
        fs::read_to_string(self.dir.join(format!("xlbd{i}.log"))).unwrap_or_default()
    }

    fn push(&self, etcd: &str, text: &str) {
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
    fn router_paths(&self, vip: &str) -> BTreeSet<String> {
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

    fn wait_paths(&self, vip: &str, want: &[&str], why: &str) {
        let want: BTreeSet<String> = want.iter().map(|s| (*s).to_owned()).collect();
        let ok = wait(|| self.router_paths(vip) == want);
        let logs = format!("{}\n{}", self.log(0), self.log(1));
        assert!(
            ok,
            "{why}: router paths to {vip} are {:?}, not {want:?}\n{logs}",
            self.router_paths(vip)
        );
    }

    fn wait_version(&self, i: usize, version: &str) {
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
        for ns in self.lbs.iter().chain([&self.router]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn read_status(path: &Path) -> Option<DaemonStatus> {
    DaemonStatus::read(path).ok()
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

fn wait(mut done: impl FnMut() -> bool) -> bool {
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
fn config(vips: u8) -> String {
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
fn lb_bird(i: usize) -> String {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/bird-lb.conf");
    let text = fs::read_to_string(shipped).expect("reading configs/bird-lb.conf");
    let (router_addr, lb_addr) = LINKS[i];
    text.replace("192.0.2.11", "LB_ADDR")
        .replace("192.0.2.1", router_addr)
        .replace("LB_ADDR", lb_addr)
}

fn version(text: &str) -> String {
    Config::from_str(text, "<test>").unwrap().config.version()
}

#[test]
fn a_fleet_announces_over_bgp_withdraws_a_stopped_node_and_shares_one_config() {
    let mut fleet = Fleet::new();
    let etcd = Etcd::start_on(Some(&fleet.router), LINKS[0].0);
    let endpoint = etcd.endpoint();
    fleet.push(&endpoint, &config(1));

    let router = fleet.router.clone();
    fleet.start_bird(&router, ROUTER_BIRD, "router");
    for i in 0..2 {
        let ns = fleet.lbs[i].clone();
        fleet.start_bird(&ns, &lb_bird(i), &format!("lb{i}"));
        fleet.start_xlbd(i, &endpoint);
    }
    let both = [LINKS[0].1, LINKS[1].1];
    fleet.wait_paths("10.100.0.1", &both, "two nodes announce");

    fleet.stop_xlbd(0);
    fleet.wait_paths("10.100.0.1", &[LINKS[1].1], "node 1's xlbd stopped");
    fleet.start_xlbd(0, &endpoint);
    fleet.wait_paths("10.100.0.1", &both, "node 1's xlbd is back");

    let two_vips = config(2);
    fleet.push(&endpoint, &two_vips);
    for i in 0..2 {
        fleet.wait_version(i, &version(&two_vips));
    }
    fleet.wait_paths(
        "10.100.0.2",
        &both,
        "a VIP pushed to etcd is announced by both",
    );
}

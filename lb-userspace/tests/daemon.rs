//! xlbd end to end: each test starts the real binary on a veth inside
//! network namespaces it creates, with its own pin directory, and checks
//! the pinned maps and the interface's XDP state. Needs root; never skips.
//!
//! xlbd runs under `nsenter --net`, not `ip netns exec`: the latter mounts
//! a fresh /sys, where /sys/fs/bpf is not the host's bpffs.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::net::IpAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use lb_common::{BACKEND_F_IN_TABLE, BACKEND_F_UP, Flow, FlowKey, PROTO_TCP, VIP_KIND_ADDRESS};
use lb_common::{VIP_KIND_SERVICE, Vip, VipKey, v4_key_addr};
use xlb::daemon::DaemonStatus;
use xlb::dataplane::live::key_addr_to_ip;
use xlb::dataplane::{Maps, PinDir, counters};
use xlb::maglev::{MaglevBackend, build_table};

const XLBD: &str = env!("CARGO_BIN_EXE_xlbd");
const TABLE_SIZE: u32 = 1021;
const READY_TIMEOUT: Duration = Duration::from_secs(60);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Namespaces, a veth pair, a pin directory and a scratch directory, all
/// removed on drop, with any xlbd still running killed first.
struct Bed {
    ns: String,
    peer_ns: String,
    interface: String,
    pins: PathBuf,
    dir: PathBuf,
    daemons: Vec<Child>,
}

impl Bed {
    fn new() -> Self {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tag = format!("{pid}-{n}");
        let bed = Bed {
            ns: format!("xlbd-t{tag}"),
            peer_ns: format!("xlbd-p{tag}"),
            // Interface names are at most 15 bytes.
            interface: format!("xd{}", pid % 100_000 * 100 + n),
            pins: PathBuf::from(format!("/sys/fs/bpf/xlb-test-{tag}")),
            dir: std::env::temp_dir().join(format!("xlbd-test-{tag}")),
            daemons: Vec::new(),
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
        ]
        .into_iter()
        .chain(["peer", "name", &peer, "netns", &bed.peer_ns])
        .collect::<Vec<_>>());
        sh(&["ip", "-n", &bed.ns, "link", "set", &bed.interface, "up"]);
        sh(&["ip", "-n", &bed.peer_ns, "link", "set", &peer, "up"]);
        // XDP_TX into a veth only delivers when the peer has GRO on.
        sh(&[
            "ip",
            "netns",
            "exec",
            &bed.peer_ns,
            "ethtool",
            "-K",
            &peer,
            "gro",
            "on",
        ]);
        bed
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("config.yaml")
    }

    fn status_path(&self) -> PathBuf {
        self.dir.join("status.json")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("xlbd.log")
    }

    /// Writes the config with the given weights of the three backends.
    fn write_config(&self, weights: [u32; 3]) {
        fs::write(self.config_path(), config_yaml(self, weights)).expect("writing the config");
    }

    /// Starts xlbd and waits until it reports ready.
    fn start(&mut self) -> u32 {
        self.start_with(|_| {})
    }

    /// Starts xlbd with `adjust` applied to its command (more arguments,
    /// environment) and waits until it reports ready.
    fn start_with(&mut self, adjust: impl FnOnce(&mut Command)) -> u32 {
        let _ = fs::remove_file(self.status_path());
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("opening the log");
        let mut command = Command::new("nsenter");
        command
            .arg(self.netns_arg())
            .args([XLBD, "run", "--config"])
            .arg(self.config_path())
            .arg("--status-file")
            .arg(self.status_path())
            .stdout(Stdio::null())
            .stderr(log);
        adjust(&mut command);
        let child = command.spawn().expect("spawning xlbd");
        let pid = child.id();
        self.daemons.push(child);
        let ready = wait_for(|| {
            self.try_status()
                .filter(|status| status.pid == pid)
                .is_some()
                || self
                    .daemons
                    .last_mut()
                    .is_some_and(|c| c.try_wait().ok().flatten().is_some())
        });
        let status = self.try_status().filter(|status| status.pid == pid);
        assert!(
            ready && status.is_some(),
            "xlbd did not become ready:\n{}",
            self.log()
        );
        pid
    }

    /// Enters the namespace's network only: `ip netns exec` would also
    /// mount a fresh /sys, hiding the host's bpffs and so the pins.
    fn netns_arg(&self) -> String {
        format!("--net=/run/netns/{}", self.ns)
    }

    fn try_status(&self) -> Option<DaemonStatus> {
        DaemonStatus::read(&self.status_path()).ok()
    }

    fn status(&self) -> DaemonStatus {
        self.try_status().expect("reading the status file")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn maps(&self) -> Maps {
        Maps::open_pinned(&PinDir::new(&self.pins)).expect("opening the pinned maps")
    }

    /// Ids of the XDP programs attached to the test interface.
    fn xdp_programs(&self) -> Vec<u64> {
        let out = sh(&[
            "ip",
            "-n",
            &self.ns,
            "-j",
            "-d",
            "link",
            "show",
            "dev",
            &self.interface,
        ]);
        let links: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j output");
        let xdp = &links[0]["xdp"];
        if let Some(id) = xdp["prog"]["id"].as_u64() {
            return vec![id];
        }
        let attached = xdp["attached"].as_array().cloned().unwrap_or_default();
        attached
            .iter()
            .filter_map(|a| a["prog"]["id"].as_u64())
            .collect()
    }

    fn xlbd(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(self.netns_arg())
            .arg(XLBD)
            .args(args)
            .output()
            .expect("running xlbd")
    }

    fn signal(&self, pid: u32, signal: libc::c_int) {
        // SAFETY: kill(2) has no memory effects; the pid is our child.
        let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
        assert_eq!(rc, 0, "signalling xlbd {pid}");
    }

    /// Waits until the `index`th xlbd started has exited.
    fn wait_exited(&mut self, index: usize) {
        let child = &mut self.daemons[index];
        let exited = wait_for(|| child.try_wait().ok().flatten().is_some());
        assert!(exited, "xlbd {index} did not exit");
    }

    fn wait_reload(&self, generation: u64) -> DaemonStatus {
        let done = wait_for(|| {
            self.try_status()
                .is_some_and(|s| s.reload_generation > generation)
        });
        assert!(done, "xlbd did not reload:\n{}", self.log());
        self.status()
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        for child in &mut self.daemons {
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

fn sh(args: &[&str]) -> Output {
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

fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

const BACKENDS: [&str; 3] = ["10.1.0.1", "10.1.0.2", "10.1.0.3"];

fn config_yaml(bed: &Bed, weights: [u32; 3]) -> String {
    let [a, b, c] = weights;
    format!(
        "interfaces:
  - name: {iface}
    mode: native
pin_path: {pins}
control_socket: {socket}
flow_table_size: 4096
encap:
  source_v4: 10.255.0.0/24
  mtu: 1500
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
        iface = bed.interface,
        pins = bed.pins.display(),
        socket = bed.dir.join("xlbd.sock").display(),
        b0 = BACKENDS[0],
        b1 = BACKENDS[1],
        b2 = BACKENDS[2],
    )
}

fn web_key() -> VipKey {
    VipKey {
        addr: v4_key_addr([10, 0, 0, 10]),
        port_be: 80u16.to_be(),
        proto: PROTO_TCP,
        family: lb_common::FAMILY_V4,
        kind: VIP_KIND_SERVICE,
        _pad: [0; 3],
    }
}

fn vips(maps: &Maps) -> HashMap<VipKey, Vip> {
    maps.vips
        .iter()
        .map(|entry| entry.expect("reading VIPS"))
        .collect()
}

/// Backend id by (VIP id, address), for entries in use.
fn backend_ids(maps: &Maps) -> BTreeMap<(u32, IpAddr), u32> {
    let mut ids = BTreeMap::new();
    for id in 0..maps.backends.len() {
        let entry = maps.backends.get(&id, 0).expect("reading BACKENDS");
        if let Some(addr) = key_addr_to_ip(&entry.addr, entry.family) {
            ids.insert((entry.vip_id, addr), id);
        }
    }
    ids
}

fn live_table(maps: &Maps, vip: &Vip) -> Vec<u32> {
    let base = vip.table_base();
    (base..base + vip.table_size)
        .map(|i| maps.maglev.get(&i, 0).expect("reading MAGLEV"))
        .collect()
}

/// The table xlb::maglev builds for the weights, in backend ids.
fn expected_table(maps: &Maps, vip_id: u32, weights: [u32; 3]) -> Vec<u32> {
    let ids = backend_ids(maps);
    let backends: Vec<MaglevBackend> = BACKENDS
        .iter()
        .zip(weights)
        .map(|(addr, weight)| MaglevBackend {
            addr: addr.parse().unwrap(),
            weight,
        })
        .collect();
    build_table(&backends, TABLE_SIZE)
        .expect("building the expected table")
        .into_iter()
        .map(|slot| ids[&(vip_id, backends[slot as usize].addr)])
        .collect()
}

#[test]
fn xlbd_writes_the_config_into_the_maps_and_attaches_one_program() {
    let mut bed = Bed::new();
    bed.write_config([1, 1, 2]);
    bed.start();

    let maps = bed.maps();
    let vips = vips(&maps);
    let services = vips.keys().filter(|k| k.kind == VIP_KIND_SERVICE).count();
    let addresses: Vec<&Vip> = vips
        .iter()
        .filter(|(k, _)| k.kind == VIP_KIND_ADDRESS)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(services, 2, "two service keys: {vips:?}");
    // tcp/80 and udp/53 share the address but not the protocol.
    assert_eq!(addresses.len(), 2, "one address key per protocol: {vips:?}");

    let web = vips[&web_key()];
    assert_eq!(web.table_size, TABLE_SIZE);
    let ids = backend_ids(&maps);
    assert_eq!(ids.len(), 6, "three backends for each of two VIPs: {ids:?}");
    for &id in ids.values() {
        let entry = maps.backends.get(&id, 0).unwrap();
        assert_eq!(
            entry.flags,
            BACKEND_F_UP | BACKEND_F_IN_TABLE,
            "backend {id}"
        );
    }
    assert_eq!(
        live_table(&maps, &web),
        expected_table(&maps, web.id, [1, 1, 2])
    );

    let settings = maps.settings.get(&0, 0).unwrap();
    assert_eq!((settings.src_v4, settings.mtu), ([10, 255, 0, 0], 1500));
    assert_eq!(bed.xdp_programs().len(), 1, "exactly one XDP program");
    let stats = counters::stats(&maps).expect("summing STATS");
    assert_eq!(stats.len(), lb_common::Stat::ALL.len());
    let traffic = counters::vip_traffic(&maps).expect("summing VIP_STATS");
    assert_eq!(traffic.len(), lb_common::DEFAULT_VIP_LIMIT as usize);
    assert_eq!(bed.status().attached[0].1 as u64, bed.xdp_programs()[0]);
}

#[test]
fn a_reload_swaps_changed_tables_and_an_invalid_config_changes_nothing() {
    let mut bed = Bed::new();
    bed.write_config([1, 1, 1]);
    let pid = bed.start();
    let before = vips(&bed.maps())[&web_key()];

    // A changed file triggers the reload by itself.
    let generation = bed.status().reload_generation;
    bed.write_config([1, 1, 3]);
    let status = bed.wait_reload(generation);
    assert!(
        status.last_reload.as_ref().is_some_and(|r| r.ok),
        "{status:?}"
    );
    let maps = bed.maps();
    let after = vips(&maps)[&web_key()];
    assert_eq!(after.id, before.id, "the VIP keeps its id");
    assert_ne!(after.table_half, before.table_half, "the live half flipped");
    assert_eq!(
        live_table(&maps, &after),
        expected_table(&maps, after.id, [1, 1, 3])
    );

    // A SIGHUP with nothing changed writes nothing.
    let generation = bed.status().reload_generation;
    bed.signal(pid, libc::SIGHUP);
    let status = bed.wait_reload(generation);
    assert_eq!(
        status.last_reload.map(|r| (r.ok, r.changes)),
        Some((true, 0))
    );

    // A start-time key changed: the reload applies the rest and says which
    // key waits for a restart.
    let text =
        config_yaml(&bed, [1, 1, 3]).replace("flow_table_size: 4096", "flow_table_size: 8192");
    let temp = bed.dir.join("next.yaml");
    fs::write(&temp, &text).unwrap();
    fs::rename(&temp, bed.config_path()).unwrap();
    let generation = bed.status().reload_generation;
    let out = bed.xlbd(&[
        "reload",
        "--status-file",
        bed.status_path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let status = bed.wait_reload(generation);
    let outcome = status.last_reload.expect("a reload result");
    assert_eq!(outcome.restart_needed, ["flow_table_size"], "{outcome:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("flow_table_size changed but only take effect on restart"),
        "{stderr}"
    );

    // An invalid config: `xlbd reload` exits 1, the maps stay.
    let snapshot = (vips(&maps), backend_ids(&maps), live_table(&maps, &after));
    let mut text = config_yaml(&bed, [1, 1, 3]);
    text = text.replace(
        "table_size: 1021\n  - name: dns",
        "table_size: 1000\n  - name: dns",
    );
    let bad_line = text.lines().position(|l| l.contains("1000")).unwrap() + 1;
    // Write through a rename so the watcher sees one event.
    let temp = bed.dir.join("next.yaml");
    fs::write(&temp, &text).unwrap();
    fs::rename(&temp, bed.config_path()).unwrap();
    let out = bed.xlbd(&[
        "reload",
        "--status-file",
        bed.status_path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "xlbd reload refuses: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("config.yaml:{bad_line}:")),
        "{stderr}"
    );

    let generation = bed.status().reload_generation;
    bed.signal(pid, libc::SIGHUP);
    let status = bed.wait_reload(generation);
    assert!(status.reloads_failed_total >= 1, "{status:?}");
    assert_eq!(status.last_reload.map(|r| r.ok), Some(false));
    let log = bed.log();
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes in a log file: {log}"
    );
    assert!(log.contains("reload failed"), "{log}");
    assert!(log.contains(&format!("config.yaml:{bad_line}:")), "{log}");
    let maps = bed.maps();
    let now = (vips(&maps), backend_ids(&maps), live_table(&maps, &after));
    assert_eq!(now, snapshot, "an invalid config changes no map");
}

#[test]
fn a_killed_xlbd_restarts_onto_the_same_tables_and_tracked_flows() {
    let mut bed = Bed::new();
    bed.write_config([2, 1, 1]);
    let pid = bed.start();
    let maps = bed.maps();
    let web = vips(&maps)[&web_key()];
    let table = live_table(&maps, &web);
    let ids = backend_ids(&maps);
    let chosen = ids[&(web.id, BACKENDS[1].parse().unwrap())];

    let flow_key = FlowKey {
        src: v4_key_addr([192, 0, 2, 7]),
        dst: v4_key_addr([10, 0, 0, 10]),
        sport_be: 40000u16.to_be(),
        dport_be: 80u16.to_be(),
        proto: PROTO_TCP,
        family: lb_common::FAMILY_V4,
        _pad: [0; 2],
    };
    let flow = Flow {
        backend_id: chosen,
        vip_id: web.id,
        last_seen_ns: 0,
    };
    let mut flows = bed.maps().flows;
    flows.insert(flow_key, flow, 0).expect("writing a flow");
    let programs = bed.xdp_programs();

    bed.signal(pid, libc::SIGKILL);
    bed.wait_exited(0);
    assert_eq!(
        bed.xdp_programs(),
        programs,
        "the program stays while xlbd is down"
    );

    bed.start();
    let maps = bed.maps();
    let after = bed.xdp_programs();
    assert_eq!(
        after.len(),
        1,
        "exactly one program after restart: {after:?}"
    );
    let web_after = vips(&maps)[&web_key()];
    assert_eq!(
        (web_after.id, web_after.table_half),
        (web.id, web.table_half)
    );
    assert_eq!(live_table(&maps, &web_after), table, "tables identical");
    assert_eq!(backend_ids(&maps), ids, "backend ids kept");
    let kept = maps
        .flows
        .get(&flow_key, 0)
        .expect("the tracked flow survives");
    assert_eq!(kept.backend_id, chosen);
    let listed = counters::flows(&maps).expect("listing flows");
    assert!(listed.contains(&(flow_key, kept)), "{listed:?}");
    let log = bed.log();
    assert!(log.contains("adopted pinned link"), "{log}");
}

#[test]
fn removing_a_vip_deletes_its_keys_and_clears_its_backends() {
    let mut bed = Bed::new();
    bed.write_config([1, 1, 1]);
    let pid = bed.start();
    let maps = bed.maps();
    let web = vips(&maps)[&web_key()];
    let dns_id = vips(&maps)
        .iter()
        .find(|(k, _)| k.kind == VIP_KIND_SERVICE && k.proto == lb_common::PROTO_UDP)
        .map(|(_, v)| v.id)
        .expect("the dns VIP");
    let ids = backend_ids(&maps);

    let dns = format!(
        "  - name: dns\n    address: 10.0.0.10\n    port: 53\n    protocol: udp\n    \
         pool: web\n    table_size: {TABLE_SIZE}\n"
    );
    let text = config_yaml(&bed, [1, 1, 1]);
    assert!(text.contains(&dns));
    fs::write(bed.config_path(), text.replace(&dns, "")).unwrap();
    let generation = bed.status().reload_generation;
    bed.signal(pid, libc::SIGHUP);
    assert!(
        bed.wait_reload(generation)
            .last_reload
            .is_some_and(|r| r.ok)
    );

    let maps = bed.maps();
    let keys: Vec<VipKey> = vips(&maps).into_keys().collect();
    assert_eq!(
        keys.len(),
        2,
        "the web service and its address key: {keys:?}"
    );
    assert!(keys.iter().all(|k| k.proto == PROTO_TCP));
    for ((vip_id, _), id) in &ids {
        let entry = maps.backends.get(id, 0).unwrap();
        if *vip_id == dns_id {
            assert_eq!(
                (entry.flags, entry.family),
                (0, 0),
                "dns backend {id} cleared"
            );
        } else {
            assert_eq!(
                entry.flags,
                BACKEND_F_UP | BACKEND_F_IN_TABLE,
                "web backend {id}"
            );
        }
    }
    assert_eq!(vips(&maps)[&web_key()], web, "web untouched");
}

#[test]
fn detach_leaves_no_program_and_no_pins() {
    let mut bed = Bed::new();
    bed.write_config([1, 1, 1]);
    let pid = bed.start();
    let busy = bed.xlbd(&["detach", "--pin-path", p(&bed.pins)]);
    assert_eq!(
        busy.status.code(),
        Some(1),
        "detach refuses while xlbd runs"
    );
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert!(stderr.contains("another xlbd is running"), "{stderr}");

    bed.signal(pid, libc::SIGTERM);
    bed.wait_exited(0);
    assert_eq!(
        bed.xdp_programs().len(),
        1,
        "stopping leaves the data plane"
    );

    let out = bed.xlbd(&["--detach", "--pin-path", p(&bed.pins)]);
    assert!(out.status.success(), "{out:?}");
    assert!(bed.xdp_programs().is_empty(), "no XDP program after detach");
    assert!(!bed.pins.exists(), "no pins after detach");
}

#[test]
fn an_interface_running_a_program_not_ours_is_refused() {
    let mut bed = Bed::new();
    bed.write_config([1, 1, 1]);
    let pid = bed.start();
    bed.signal(pid, libc::SIGTERM);
    bed.wait_exited(0);
    let theirs = bed.xdp_programs();

    // The same interface under another pin directory: the program is not
    // behind a link of this xlbd's.
    let other = PathBuf::from(format!("{}-other", bed.pins.display()));
    let text = config_yaml(&bed, [1, 1, 1]).replace(
        &format!("pin_path: {}", bed.pins.display()),
        &format!("pin_path: {}", other.display()),
    );
    let config = bed.dir.join("other.yaml");
    fs::write(&config, text).unwrap();
    let status = bed.dir.join("other-status.json");
    let out = bed.xlbd(&["run", "--config", p(&config), "--status-file", p(&status)]);
    let _ = fs::remove_dir_all(&other);

    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "interface {} already runs XDP program id {}",
        bed.interface, theirs[0]
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(bed.xdp_programs(), theirs, "the other program is untouched");

    let out = bed.xlbd(&["detach", "--pin-path", p(&bed.pins)]);
    assert!(out.status.success(), "{out:?}");
    assert!(bed.xdp_programs().is_empty() && !bed.pins.exists());
}

#[test]
fn under_systemd_xlbd_says_ready_once_attached_and_logs_json() {
    let mut bed = Bed::new();
    bed.write_config([1, 1, 1]);
    let notify = bed.dir.join("notify.sock");
    let socket = UnixDatagram::bind(&notify).expect("binding the notify socket");
    socket.set_read_timeout(Some(READY_TIMEOUT)).unwrap();
    bed.start_with(|xlbd| {
        xlbd.args(["--log-format", "json"])
            .env("NOTIFY_SOCKET", &notify);
    });

    // Type=notify: READY=1 comes after the attach and the map writes.
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.recv(&mut buf).expect("READY=1 from xlbd");
        if String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l == "READY=1")
        {
            break;
        }
    }
    assert_eq!(bed.xdp_programs().len(), 1, "attached when ready");
    assert!(vips(&bed.maps()).contains_key(&web_key()), "maps written");

    let log = bed.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let said = |message: &str| {
        lines
            .iter()
            .any(|l| l["message"] == message && l["level"] == "INFO")
    };
    assert!(
        said("starting") && said("attached") && said("ready"),
        "{log}"
    );
}

#[test]
fn check_accepts_a_good_config_and_names_the_line_of_a_bad_one() {
    let bed = Bed::new();
    bed.write_config([1, 1, 1]);
    let good = bed.xlbd(&["check", p(&bed.config_path())]);
    assert_eq!(good.status.code(), Some(0), "{good:?}");

    let text = config_yaml(&bed, [1, 1, 1]).replace("mtu: 1500", "mtu: 1500\n  colour: blue");
    let line = text.lines().position(|l| l.contains("colour")).unwrap() + 1;
    fs::write(bed.config_path(), text).unwrap();
    let bad = bed.xlbd(&["check", p(&bed.config_path())]);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains(&format!("config.yaml:{line}:")), "{stderr}");
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

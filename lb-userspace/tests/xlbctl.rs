//! xlbctl against a real xlbd on a veth in its own namespaces: reads from
//! the pinned maps and the status file, mutations through the control
//! socket. Needs root; never skips.

mod xlbctl_bed;

use aya::maps::PerCpuValues;
use aya::util::nr_cpus;
use lb_common::{BACKEND_F_IN_TABLE, BACKEND_F_UP, Flow, FlowKey, PROTO_TCP, Stat, v4_key_addr};
use serde_json::Value;
use xlb::maglev::{MaglevBackend, build_table, slot_shares};
use xlbctl_bed::{BACKENDS, Bed, TABLE_SIZE};

fn web(services: &Value) -> &Value {
    services
        .as_array()
        .expect("a list of VIPs")
        .iter()
        .find(|s| s["name"] == "web")
        .expect("the web VIP")
}

fn member<'a>(service: &'a Value, address: &str) -> &'a Value {
    service["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .find(|b| b["address"] == address)
        .unwrap_or_else(|| panic!("backend {address} in {service}"))
}

fn flags(bed: &Bed, id: u64) -> u32 {
    bed.maps()
        .backends
        .get(&(id as u32), 0)
        .expect("reading BACKENDS")
        .flags
}

#[test]
fn svc_list_json_matches_the_config() {
    let bed = Bed::start("xa", [1, 2, 3]);
    let services = bed.json(&["svc", "list", "-o", "json"]);
    assert_eq!(services.as_array().map(Vec::len), Some(2), "{services}");
    let web = web(&services);
    assert_eq!(
        (
            &web["address"],
            &web["port"],
            &web["protocol"],
            &web["pool"]
        ),
        (
            &Value::from("10.0.0.10"),
            &Value::from(80),
            &Value::from("tcp"),
            &Value::from("web")
        )
    );
    assert_eq!(web["table_size"], TABLE_SIZE);
    for (address, weight) in BACKENDS.iter().zip([1, 2, 3]) {
        let b = member(web, address);
        assert_eq!(
            (&b["weight"], &b["effective_weight"]),
            (&Value::from(weight), &Value::from(weight))
        );
        assert_eq!(
            (&b["state"], &b["up"], &b["in_table"]),
            (
                &Value::from("ready"),
                &Value::Bool(true),
                &Value::Bool(true)
            )
        );
    }

    // Without the status file the maps alone still list VIPs and backends.
    let out = std::process::Command::new(xlbctl_bed::XLBCTL)
        .args(["--status-file", "/nonexistent", "--pin-path"])
        .arg(&bed.pins)
        .args(["svc", "list", "-o", "json"])
        .output()
        .expect("running xlbctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bare: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(bare.as_array().map(Vec::len), Some(2));
    assert!(bare[0]["name"].is_null() && bare[0]["backends"].as_array().map(Vec::len) == Some(3));

    use std::os::unix::fs::PermissionsExt as _;
    let socket = std::fs::metadata(bed.socket_path()).expect("the control socket");
    assert_eq!(socket.permissions().mode() & 0o777, 0o600, "root only");

    let table = bed.xlbctl(&["svc", "list", "--stats"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("10.0.0.10:80/tcp") && text.contains("-> 10.1.0.2"),
        "{text}"
    );
}

#[test]
fn maglev_show_shares_match_the_maglev_builder() {
    let bed = Bed::start("xb", [1, 1, 2]);
    let shares = bed.json(&["maglev", "show", "web", "-o", "json"]);
    let backends: Vec<MaglevBackend> = BACKENDS
        .iter()
        .zip([1, 1, 2])
        .map(|(a, weight)| MaglevBackend {
            addr: a.parse().unwrap(),
            weight,
        })
        .collect();
    let table = build_table(&backends, TABLE_SIZE).expect("building the table");
    let expected = slot_shares(&table, &backends);
    for (share, want) in shares.as_array().expect("shares").iter().zip(&expected) {
        assert_eq!(share["backend"], BACKENDS[want.index]);
        assert_eq!(share["slots"], want.slots, "{share}");
        let ideal = share["ideal_slots"].as_f64().expect("ideal");
        assert!((ideal - want.ideal).abs() < 1e-9, "{share}");
    }
}

#[test]
fn drain_and_ready_through_the_socket_flip_the_backend_flags() {
    let bed = Bed::start("xc", [1, 1, 1]);
    let web_before = web(&bed.json(&["svc", "list", "-o", "json"])).clone();
    let id = member(&web_before, BACKENDS[1])["id"].as_u64().expect("id");

    let out = bed.xlbctl(&["backend", "drain", BACKENDS[1]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        flags(&bed, id),
        BACKEND_F_UP,
        "draining: up, out of the table"
    );
    let status = bed.status().expect("status");
    let view = &status
        .vips
        .iter()
        .find(|v| v.name == "web")
        .unwrap()
        .backends[1];
    assert_eq!((view.effective_weight, view.operator.is_some()), (0, true));
    assert!(bed.log().contains("operator override set"), "{}", bed.log());

    // A tracked flow seen just now keeps `drain --wait` waiting.
    let key = FlowKey {
        src: v4_key_addr([192, 0, 2, 9]),
        dst: v4_key_addr([10, 0, 0, 10]),
        sport_be: 40000u16.to_be(),
        dport_be: 80u16.to_be(),
        proto: PROTO_TCP,
        family: lb_common::FAMILY_V4,
        _pad: [0; 2],
    };
    let web_id = web_before["id"].as_u64().unwrap() as u32;
    let flow = Flow {
        backend_id: id as u32,
        vip_id: web_id,
        last_seen_ns: monotonic_ns(),
    };
    let mut flows = bed.maps().flows;
    flows.insert(key, flow, 0).expect("writing a flow");
    let waited = bed.xlbctl(&["backend", "drain", BACKENDS[1], "--wait", "--timeout", "1s"]);
    assert_eq!(
        waited.status.code(),
        Some(1),
        "times out while the flow is active"
    );
    let counted = bed.json(&["ct", "count", "--backend", BACKENDS[1], "-o", "json"]);
    assert_eq!(
        (&counted["total"], &counted["by_protocol"]["tcp"]),
        (&Value::from(1), &Value::from(1))
    );
    // Written from here, not inserted by the program: nothing evicted.
    let table = &counted["table"];
    assert_eq!(
        (
            &table["entries"],
            &table["inserts_total"],
            &table["evictions_total"]
        ),
        (&Value::from(1), &Value::from(0), &Value::from(0)),
        "{counted}"
    );
    flows.remove(&key).expect("removing the flow");
    let waited = bed.xlbctl(&["backend", "drain", BACKENDS[1], "--wait", "--timeout", "5s"]);
    assert_eq!(
        waited.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );

    // The override survives a reload.
    let out = bed.xlbctl(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        flags(&bed, id),
        BACKEND_F_UP,
        "still draining after a reload"
    );

    let out = bed.xlbctl(&["backend", "ready", BACKENDS[1]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(flags(&bed, id), BACKEND_F_UP | BACKEND_F_IN_TABLE);

    let unknown = bed.xlbctl(&["backend", "drain", "10.9.9.9"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("10.9.9.9"));
    let usage = bed.xlbctl(&["backend", "drain", "not-an-address"]);
    assert_eq!(usage.status.code(), Some(2), "bad usage exits 2");
}

#[test]
fn backend_weight_rebuilds_the_table() {
    let bed = Bed::start("xd", [1, 1, 1]);
    let out = bed.xlbctl(&["backend", "weight", BACKENDS[2], "4"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shares = bed.json(&["maglev", "show", "web", "-o", "json"]);
    let backends: Vec<MaglevBackend> = BACKENDS
        .iter()
        .zip([1, 1, 4])
        .map(|(a, weight)| MaglevBackend {
            addr: a.parse().unwrap(),
            weight,
        })
        .collect();
    let table = build_table(&backends, TABLE_SIZE).unwrap();
    let expected = slot_shares(&table, &backends);
    let slots: Vec<u64> = shares
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["slots"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = expected.iter().map(|s| u64::from(s.slots)).collect();
    assert_eq!(slots, want);
    let listed = bed.json(&["backend", "show", BACKENDS[2], "-o", "json"]);
    assert_eq!(listed[0]["effective_weight"], 4);
    assert_eq!(listed[0]["weight"], 1, "the config's weight is still shown");

    // `maglev diff` previews a changed config, slot for slot: the first
    // backend's config weight goes 1 -> 3 while the operator's weight of 4
    // on the third stays, as xlbd would keep it over a reload.
    bed.write_config([3, 1, 1]);
    let table_now = build_table(&weighted([1, 1, 4]), TABLE_SIZE).unwrap();
    let table_after = build_table(&weighted([3, 1, 4]), TABLE_SIZE).unwrap();
    let diff = bed.json(&["maglev", "diff", "-o", "json"]);
    for (index, address) in BACKENDS.iter().enumerate() {
        let row = diff
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["vip"] == "web" && m["backend"] == *address)
            .unwrap_or_else(|| panic!("no diff row for {address}: {diff}"));
        let i = index as u32;
        let count = |t: &[u32]| t.iter().filter(|&&b| b == i).count() as u64;
        let pairs = table_now.iter().zip(&table_after);
        let gained = pairs.clone().filter(|(a, b)| **b == i && **a != i).count();
        let lost = pairs.filter(|(a, b)| **a == i && **b != i).count();
        assert_eq!(row["slots_now"], count(&table_now), "{address}: {row}");
        assert_eq!(row["slots_after"], count(&table_after), "{address}: {row}");
        assert_eq!(row["slots_gained"], gained as u64, "{address}: {row}");
        assert_eq!(row["slots_lost"], lost as u64, "{address}: {row}");
    }
    assert_eq!(
        shares.as_array().unwrap()[2]["slots"],
        count_of(&table_now, 2)
    );
}

fn weighted(weights: [u32; 3]) -> Vec<MaglevBackend> {
    BACKENDS
        .iter()
        .zip(weights)
        .map(|(a, weight)| MaglevBackend {
            addr: a.parse().unwrap(),
            weight,
        })
        .collect()
}

fn count_of(table: &[u32], index: u32) -> u64 {
    table.iter().filter(|&&b| b == index).count() as u64
}

#[test]
fn stats_json_has_every_reason_summed_over_all_cpus() {
    let bed = Bed::start("xe", [1, 1, 1]);
    // A counter the program never moves here: write known per-CPU values.
    let cpus = nr_cpus().expect("counting CPUs");
    let values: Vec<u64> = (0..cpus as u64).map(|cpu| 1000 + cpu * 7).collect();
    let expected: u64 = values.iter().sum();
    let mut maps = bed.maps();
    let per_cpu = PerCpuValues::try_from(values).expect("per-CPU values");
    maps.stats
        .set(Stat::DropAdjustFailed.index(), per_cpu, 0)
        .expect("writing STATS");

    let stats = bed.json(&["stats", "-o", "json"]);
    let rows = stats.as_array().expect("rows");
    let reasons: Vec<&str> = rows.iter().map(|r| r["reason"].as_str().unwrap()).collect();
    let all: Vec<&str> = Stat::ALL.iter().map(|s| s.reason()).collect();
    assert_eq!(reasons, all);
    let adjust = rows
        .iter()
        .find(|r| r["reason"] == "adjust_failed")
        .unwrap();
    assert_eq!(
        (&adjust["action"], &adjust["packets"]),
        (&Value::from("drop"), &Value::from(expected))
    );

    let status = bed.json(&["status", "-o", "json"]);
    assert_eq!(status["daemon_running"], true);
    assert_eq!(status["daemon"]["interfaces"][0]["mode"], "native");
    assert_eq!(status["tables"].as_array().map(Vec::len), Some(2));
    let completions = bed.xlbctl(&["completions", "bash"]);
    assert!(String::from_utf8_lossy(&completions.stdout).contains("xlbctl"));
}

#[test]
fn detach_through_the_socket_removes_the_data_plane() {
    let bed = Bed::start("xf", [1, 1, 1]);
    let out = bed.xlbctl(&["detach"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        xlbctl_bed::wait_for(|| !bed.pins.exists()
            || std::fs::read_dir(&bed.pins).is_ok_and(|mut d| d.next().is_none())),
        "pins removed"
    );
    let gone = bed.xlbctl(&["svc", "list"]);
    assert_eq!(gone.status.code(), Some(1), "no maps: exit 1");
    let detached = xlbctl_bed::wait_for(|| {
        let out = xlbctl_bed::sh(&[
            "ip",
            "-n",
            &bed.ns,
            "-d",
            "link",
            "show",
            "dev",
            &bed.interface,
        ]);
        !String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
    });
    assert!(detached, "the XDP program is gone once xlbd exits");
}

fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into `now`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

#[test]
fn a_peer_that_is_not_root_is_refused_on_the_control_socket() {
    use std::os::unix::fs::PermissionsExt as _;

    let bed = Bed::start("xn", [1, 1, 1]);
    let id = member(web(&bed.json(&["svc", "list", "-o", "json"])), BACKENDS[1])["id"]
        .as_u64()
        .expect("id");
    // Loosen the socket's mode so that xlbd's own peer check is what refuses,
    // once xlbd has set its own (it binds, then sets 0600).
    let mode = || std::fs::metadata(bed.socket_path()).map(|m| m.permissions().mode() & 0o777);
    assert!(
        xlbctl_bed::wait_for(|| mode().is_ok_and(|m| m == 0o600)),
        "socket mode set"
    );
    std::fs::set_permissions(bed.socket_path(), std::fs::Permissions::from_mode(0o666))
        .expect("chmod the control socket");

    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(xlbctl_bed::XLBCTL)
        .arg("--socket")
        .arg(bed.socket_path())
        .args(["backend", "drain", BACKENDS[1]])
        .output()
        .expect("running xlbctl as nobody");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "refused: {stderr}");
    assert!(stderr.contains("only root"), "says why: {stderr}");
    assert_eq!(
        flags(&bed, id),
        BACKEND_F_UP | BACKEND_F_IN_TABLE,
        "the backend was not drained"
    );
}

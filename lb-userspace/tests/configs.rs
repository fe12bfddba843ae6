//! The example configs in configs/ all load, and broken configs are
//! rejected with the file, line, column and field of the problem.

use std::path::{Path, PathBuf};

use xlb::config::{self, AttachMode, BackendState, CheckKind, Config, ConfigError};

#[path = "configs/broken.rs"]
mod broken;
use broken::BROKEN;

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

fn example_files() -> Vec<PathBuf> {
    let entries = std::fs::read_dir(configs_dir()).expect("configs/ is readable");
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("configs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

fn load_example(name: &str) -> config::Loaded {
    let path = configs_dir().join(name);
    Config::load(&path).unwrap_or_else(|err| panic!("{} is invalid:\n{err}", path.display()))
}

#[test]
fn every_example_config_is_valid() {
    let files = example_files();
    assert!(
        files.len() >= 3,
        "configs/ holds too few examples: {files:?}"
    );
    for path in files {
        let loaded = Config::load(&path)
            .unwrap_or_else(|err| panic!("{} is invalid:\n{err}", path.display()));
        for warning in &loaded.warnings {
            eprintln!("warning: {warning}");
        }
        eprintln!("{}: version {}", path.display(), loaded.config.version());
    }
}

#[test]
fn the_full_example_spells_out_every_default() {
    let full = load_example("full.yaml").config;
    let minimal = load_example("minimal.yaml").config;

    // minimal.yaml leaves these out; full.yaml writes the documented defaults.
    assert_eq!(full.pin_path, minimal.pin_path);
    assert_eq!(full.control_socket, minimal.control_socket);
    assert_eq!(full.metrics_listen, minimal.metrics_listen);
    assert_eq!(full.flow_table_size, minimal.flow_table_size);
    assert_eq!(full.syn_guard, minimal.syn_guard);
    assert_eq!(full.encap.mtu, minimal.encap.mtu);
    assert_eq!(full.interfaces[0].mode, minimal.interfaces[0].mode);
    assert_eq!(full.vips[0].table_size, minimal.vips[0].table_size);
    assert_eq!(
        full.vips[0].source_affinity,
        minimal.vips[0].source_affinity
    );
    let (full_backend, minimal_backend) = (
        &full.pools["web"].backends[0],
        &minimal.pools["web"].backends[0],
    );
    assert_eq!(full_backend.weight, minimal_backend.weight);
    assert_eq!(full_backend.state, minimal_backend.state);

    let check = full.pools["web"]
        .health_check
        .as_ref()
        .expect("full.yaml has a health check");
    assert_eq!(check.kind, CheckKind::Tcp);
    assert_eq!(
        (check.interval, check.timeout),
        (
            config::DEFAULT_CHECK_INTERVAL,
            config::DEFAULT_CHECK_TIMEOUT
        )
    );
    assert_eq!(
        (check.rise, check.fall),
        (config::DEFAULT_RISE, config::DEFAULT_FALL)
    );
    let signal = full.pools["web"]
        .load_signal
        .as_ref()
        .expect("full.yaml has a load signal");
    assert_eq!(signal.url_path, config::DEFAULT_LOAD_PATH);
    assert_eq!(
        (signal.interval, signal.timeout),
        (config::DEFAULT_LOAD_INTERVAL, config::DEFAULT_LOAD_TIMEOUT)
    );
}

#[test]
fn defaults_fill_the_keys_a_config_leaves_out() {
    let config = load_example("minimal.yaml").config;

    assert_eq!(config.pin_path, Path::new("/sys/fs/bpf/xlb"));
    assert_eq!(config.control_socket, Path::new("/run/xlb/xlbd.sock"));
    assert_eq!(
        config.metrics_listen,
        "127.0.0.1:9641".parse().expect("address")
    );
    assert_eq!(config.flow_table_size, lb_common::DEFAULT_FLOW_CAPACITY);
    assert_eq!(
        (
            config.syn_guard.new_flows_per_second,
            config.syn_guard.burst
        ),
        (config::DEFAULT_NEW_FLOWS_PER_SECOND, config::DEFAULT_BURST)
    );
    assert_eq!(config.encap.mtu, lb_common::DEFAULT_MTU);
    assert_eq!(config.encap.gateway_mac, None);
    assert_eq!(config.interfaces[0].mode, AttachMode::Native);
    assert_eq!(config.vips[0].table_size, lb_common::DEFAULT_TABLE_SIZE);
    let backend = &config.pools["web"].backends[0];
    assert_eq!((backend.weight, backend.state), (100, BackendState::Ready));
}

#[test]
fn the_demo_config_reads_as_written() {
    let config = load_example("demo.yaml").config;

    let dns = config
        .vips
        .iter()
        .find(|v| v.name == "dns")
        .expect("dns VIP");
    assert_eq!(
        (dns.port, dns.protocol.number(), dns.table_size),
        (53, lb_common::PROTO_UDP, 4099)
    );
    assert!(dns.source_affinity);
    let web = config.pool_of(&config.vips[0]).expect("web pool");
    let weights: Vec<u32> = web.maglev_backends().iter().map(|b| b.weight).collect();
    assert_eq!(
        weights,
        [100, 200, 0],
        "the draining backend takes no new flows"
    );
    let source = config.encap.source_v4.expect("source_v4");
    assert_eq!((source.len, source.host_bits()), (24, 8));
    assert_eq!(config.encap.gateway_mac, Some([2, 0, 0, 0, 0, 1]));
}

#[test]
fn comments_and_spelled_out_defaults_do_not_change_the_version() {
    let plain = "interfaces: [{name: eth0}]\n";
    let commented =
        "# a comment\ninterfaces:\n  - name: eth0   # here\n    mode: native\nencap: {mtu: 1500}\n";
    let other = "interfaces: [{name: eth1}]\n";
    let version = |text| {
        Config::from_str(text, "v.yaml")
            .expect("valid")
            .config
            .version()
    };

    assert_eq!(version(plain), version(commented));
    assert_ne!(version(plain), version(other));
    assert_eq!(version(plain).len(), 16);
}

#[test]
fn a_syn_guard_rate_of_zero_turns_the_guard_off() {
    let yaml = "interfaces: [{name: eth0}]\nsyn_guard: {new_flows_per_second: 0}\n";
    let loaded = Config::from_str(yaml, "off.yaml").expect("valid");
    assert_eq!(loaded.config.syn_guard.new_flows_per_second, 0);
    assert_eq!(loaded.config.syn_guard.burst, config::DEFAULT_BURST);
}

#[test]
fn a_small_table_is_a_warning_not_an_error() {
    let text = "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
vips:
  - {name: a, address: 10.100.0.1, port: 80, protocol: tcp, pool: web, table_size: 251}
pools:
  web:
    backends: [{address: 10.0.0.11}, {address: 10.0.0.12}, {address: 10.0.0.13}]
";
    let loaded = Config::from_str(text, "small.yaml").expect("valid with a warning");
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "small.yaml:4:84: vips[0].table_size: 251 slots for 3 backends is below 100 per \
                backend; shares will be uneven"
        ]
    );
}

#[test]
fn check_summarises_a_valid_config() {
    let report = config::check(&configs_dir().join("demo.yaml")).expect("demo.yaml is valid");
    let text = report.to_string();
    assert!(
        text.contains("demo.yaml: ok: 1 interfaces, 3 VIPs, 2 pools, 5 backends; version "),
        "{text}"
    );
}

#[test]
fn a_missing_file_is_reported_by_name() {
    let err = Config::load("/nonexistent/xlb.yaml").expect_err("no such file");
    assert!(matches!(err, ConfigError::Read { .. }));
    // The cause follows once, as the error's source.
    let chain = format!("{:#}", anyhow::Error::from(err));
    assert_eq!(
        chain, "cannot read config /nonexistent/xlb.yaml: No such file or directory (os error 2)",
        "{chain}"
    );
}

#[test]
fn an_endless_or_binary_file_is_refused_with_a_reason() {
    let err = Config::load("/dev/zero").expect_err("endless");
    let chain = format!("{:#}", anyhow::Error::from(err));
    assert!(chain.ends_with("larger than 16 MiB"), "{chain}");

    let path = std::env::temp_dir().join(format!("xlb-nonutf8-{}.yaml", std::process::id()));
    std::fs::write(&path, b"interfaces:\n  - name: eth0 # \xff\n").expect("writing");
    let err = Config::load(&path).expect_err("not UTF-8");
    let _ = std::fs::remove_file(&path);
    let chain = format!("{:#}", anyhow::Error::from(err));
    assert!(chain.ends_with("line 2, column 18: not UTF-8"), "{chain}");
}

#[test]
fn a_named_pipe_is_refused_at_once_rather_than_waited_on() {
    // Regression: with the config path turned into a pipe, a reload
    // blocked in open(2) on xlbd's only runtime thread for good.
    let path = std::env::temp_dir().join(format!("xlb-fifo-{}.yaml", std::process::id()));
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: `c_path` is a valid NUL-terminated path for the call.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let (done, result) = std::sync::mpsc::channel();
    let reader = path.clone();
    std::thread::spawn(move || {
        let _ = done.send(Config::load(&reader).map(|_| ()));
    });
    let outcome = result.recv_timeout(std::time::Duration::from_secs(10));
    let _ = std::fs::remove_file(&path);
    let err = outcome
        .expect("loading a named pipe returns instead of waiting for a writer")
        .expect_err("a named pipe is not a config");
    let chain = format!("{:#}", anyhow::Error::from(err));
    assert!(chain.ends_with(": a named pipe, not a file"), "{chain}");
}

#[test]
fn every_broken_config_is_rejected_with_file_line_and_field() {
    let mut failures = Vec::new();
    for case in BROKEN {
        match Config::from_str(case.yaml, "broken.yaml") {
            Ok(_) => failures.push(format!("{}: accepted", case.what)),
            Err(err) => {
                let text = err.to_string();
                eprintln!("{}: {text}", case.what);
                if !text.contains(case.error) {
                    failures.push(format!(
                        "{}:\n  want {}\n  got  {text}",
                        case.what, case.error
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_rejected_value_is_reported_once_not_again_as_its_consequences() {
    // Regression: a bad backend address also gave "pool web has no
    // backends" (listed first), and a zero interval also "timeout: 1s is
    // longer than the interval 0ns".
    let text = "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
vips: [{name: web, address: 10.100.0.1, port: 80, protocol: tcp, pool: web}]
pools:
  web:
    backends: [{address: 10.0.0.0/24}]
    health_check: {interval: 0s}
";
    let err = Config::from_str(text, "once.yaml").expect_err("invalid");
    let lines: Vec<String> = err.issues().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "once.yaml:6:26: pools.web.backends[0].address: \"10.0.0.0/24\" is not an IP address",
            "once.yaml:7:30: pools.web.health_check.interval: must be longer than 0",
        ],
    );
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let text = "\
interfaces: [{name: eth0}]
vips:
  - {name: a, address: 10.100.0.1, port: 80, protocol: tcp, pool: web, table_size: 100}
  - {name: b, address: 10.100.0.x, port: 80, protocol: tcp, pool: web}
pools:
  web: {backends: [{address: 10.0.0.11, weight: 20000}]}
";
    let err = Config::from_str(text, "many.yaml").expect_err("invalid");
    let lines: Vec<String> = err.issues().iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(
        lines[0].starts_with("many.yaml:3:84: vips[0].table_size: 100 is not prime"),
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with("many.yaml:4:24: vips[1].address: "),
        "{lines:#?}"
    );
    assert!(
        lines[2].starts_with("many.yaml:6:30: pools.web.backends[0].address: IPv4 backend"),
        "{lines:#?}"
    );
    assert!(
        lines[3].starts_with("many.yaml:6:49: pools.web.backends[0].weight: 20000"),
        "{lines:#?}"
    );
}

#[test]
fn the_data_plane_limits_are_enforced() {
    let mut text =
        String::from("interfaces: [{name: eth0}]\nencap: {source_v4: 10.255.0.1}\nvips:\n");
    for i in 0..=lb_common::DEFAULT_VIP_LIMIT {
        text += &format!(
            "  - {{name: v{i}, address: 10.100.0.1, port: {}, protocol: tcp, pool: big}}\n",
            i + 1
        );
    }
    text += "pools:\n  big:\n    backends:\n";
    for i in 0..100 {
        text += &format!("      - address: 10.0.{}.{}\n", i / 200, i % 200 + 1);
    }

    let yaml = text;
    let err = Config::from_str(&yaml, "limits.yaml").expect_err("too big");
    let text = err.to_string();
    assert!(
        text.contains("limits.yaml:4:3: vips: 65 VIPs listed; limits.vips allows 64"),
        "{text}"
    );
    assert!(
        text.contains("vips: the VIPs' pools hold 6500 backends in all"),
        "{text}"
    );

    let raised = format!("limits: {{vips: 65, backends: 6500}}\n{yaml}");
    let loaded = Config::from_str(&raised, "limits.yaml").expect("limits raised");
    let limits = loaded.config.limits;
    assert_eq!((limits.vips, limits.backends), (65, 6500));

    let beyond = "interfaces: [{name: eth0}]\nlimits: {vips: 1025, backends: 131073}\n";
    let text = Config::from_str(beyond, "beyond.yaml")
        .expect_err("above the ceiling")
        .to_string();
    assert!(
        text.contains("limits.vips: 1025 is outside 1..=1024"),
        "{text}"
    );
    assert!(
        text.contains("limits.backends: 131073 is outside 1..=131072"),
        "{text}"
    );
}

#[test]
fn the_routing_policy_reads_as_written() {
    let text = "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
tenants: {free: {new_flows_per_second: 100, burst: 20}}
vips:
  - name: llm
    address: 10.100.0.1
    port: 8000
    protocol: tcp
    pool: chat-eu
    port_pools: {8001: embeddings}
    source_rules:
      - {prefix: 10.1.0.0/16, pool: chat-us}
      - {prefix: 10.2.0.0/16, tenant: free}
      - {prefix: 192.0.2.0/24, deny: true}
    canary: {pool: chat-v2, share: 12.5%, rollback: {max_down_share: 0.5}}
pools:
  chat-eu:
    backends:
      - {address: 10.0.0.11, labels: {cost: \"1\"}}
      - {address: 10.0.0.12, labels: {cost: \"2.5\"}}
    fallback: chat-us
    cost_aware: {spill_load: 0.8}
  chat-us: {backends: [{address: 10.0.0.21}]}
  chat-v2: {backends: [{address: 10.0.0.31}]}
  embeddings: {backends: [{address: 10.0.0.41}]}
";
    let config = Config::from_str(text, "policy.yaml").expect("valid").config;
    let vip = &config.vips[0];
    assert_eq!(vip.port_pools[&8001], "embeddings");
    let pools: Vec<Option<&str>> = vip.source_rules.iter().map(|r| r.pool()).collect();
    assert_eq!(pools, [Some("chat-us"), None, None]);
    assert_eq!(vip.source_rules[1].tenant(), Some("free"));
    assert_eq!(vip.source_rules[2].action, config::SourceAction::Deny);
    let canary = vip.canary.as_ref().expect("a canary");
    assert_eq!(
        (canary.pool.as_str(), canary.share.basis_points()),
        ("chat-v2", 1250)
    );
    assert_eq!(config::share_per_65536(canary.share), 8192);
    assert_eq!(config.tenants["free"].new_flows_per_second, 100);
    let eu = &config.pools["chat-eu"];
    assert_eq!(eu.fallback.as_deref(), Some("chat-us"));
    let cost = eu.cost_aware.as_ref().expect("cost aware");
    assert_eq!(
        cost.cost.values().copied().collect::<Vec<f64>>(),
        [1.0, 2.5]
    );
    assert_eq!(
        config.tables_of(vip),
        ["chat-eu", "embeddings", "chat-us", "chat-v2"]
    );
}

#[test]
fn a_pool_reached_only_by_policy_is_checked_on_the_port_it_serves() {
    let text = "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
vips:
  - name: llm
    address: 10.100.0.1
    port: 8000
    protocol: tcp
    pool: chat
    port_pools: {8001: embeddings}
    canary: {pool: chat-v2, share: 5%}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-v2: {backends: [{address: 10.0.0.31}], health_check: {kind: tcp}}
  embeddings: {backends: [{address: 10.0.0.41}], health_check: {kind: tcp}}
";
    let loaded = Config::from_str(text, "ports.yaml").expect("valid");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let port = |pool: &str| {
        loaded.config.pools[pool]
            .health_check
            .as_ref()
            .and_then(|c| c.port)
    };
    assert_eq!(
        (port("chat-v2"), port("embeddings")),
        (Some(8000), Some(8001))
    );
}

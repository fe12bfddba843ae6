//! Broken configs, each with the error (file, line, column, field and
//! reason) it must be rejected with. Every config is named `broken.yaml`.

/// A broken config and a piece of the error it must give.
pub struct Broken {
    pub what: &'static str,
    pub yaml: &'static str,
    pub error: &'static str,
}

pub const BROKEN: &[Broken] = &[
    Broken {
        what: "duplicate VIP",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
vips:
  - {name: a, address: 10.100.0.1, port: 80, protocol: tcp, pool: web}
  - {name: b, address: 10.100.0.1, port: 80, protocol: tcp, pool: web}
pools:
  web: {backends: [{address: 10.0.0.11}]}
",
        error: "broken.yaml:5:24: vips[1].address: 10.100.0.1 port 80 tcp is already served by \
            VIP a",
    },
    Broken {
        what: "IPv6 backend without source_v6",
        yaml: "\
interfaces: [{name: eth0}]
encap:
  source_v4: 10.255.0.0/24
pools:
  web:
    backends:
      - address: 10.0.0.11
      - address: 2001:db8::12
",
        error: "broken.yaml:8:18: pools.web.backends[1].address: IPv6 backend 2001:db8::12 \
            cannot be reached: encap.source_v6 (the outer IPv6 source) is not set",
    },
    Broken {
        what: "non-prime table size",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
vips:
  - name: web
    address: 10.100.0.1
    port: 80
    protocol: tcp
    pool: web
    table_size: 65536
pools:
  web: {backends: [{address: 10.0.0.11}]}
",
        error: "broken.yaml:9:17: vips[0].table_size: 65536 is not prime",
    },
    Broken {
        what: "empty pool on a VIP",
        yaml: "\
interfaces: [{name: eth0}]
vips:
  - {name: web, address: 10.100.0.1, port: 80, protocol: tcp, pool: web}
pools:
  web: {backends: []}
",
        error: "broken.yaml:3:69: vips[0].pool: pool web has no backends",
    },
    Broken {
        what: "pool not found",
        yaml: "\
interfaces: [{name: eth0}]
vips:
  - {name: web, address: 10.100.0.1, port: 80, protocol: tcp, pool: wbe}
",
        error: "broken.yaml:3:69: vips[0].pool: pool wbe is not defined under pools",
    },
    Broken {
        what: "weight out of range",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  web:
    backends:
      - address: 10.0.0.11
        weight: 10001
",
        error: "broken.yaml:7:17: pools.web.backends[0].weight: 10001 is out of range 0..=10000",
    },
    Broken {
        what: "bad address",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  web:
    backends:
      - address: 10.0.0.300
",
        error: "broken.yaml:6:18: pools.web.backends[0].address: \"10.0.0.300\" is not an IP \
            address",
    },
    Broken {
        what: "unknown field",
        yaml: "\
interfaces: [{name: eth0}]
vips:
  - name: web
    adress: 10.100.0.1
",
        error: "broken.yaml:4:5: vips[0].adress: unknown field `adress`",
    },
    Broken {
        what: "bad duration",
        yaml: "\
interfaces: [{name: eth0}]
pools:
  web:
    health_check:
      interval: 2 parsecs
",
        error: "broken.yaml:5:17: pools.web.health_check.interval: \"2 parsecs\" is not a duration",
    },
    Broken {
        what: "unknown attach mode",
        yaml: "\
interfaces:
  - name: eth0
    mode: turbo
",
        error: "broken.yaml:3:11: interfaces[0].mode: unknown variant `turbo`, expected one of \
            native, generic",
    },
    Broken {
        what: "table size above the maximum",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
vips:
  - name: web
    address: 10.100.0.1
    port: 80
    protocol: tcp
    pool: web
    table_size: 131071
pools:
  web: {backends: [{address: 10.0.0.11}]}
",
        error: "broken.yaml:9:17: vips[0].table_size: 131071 is above the largest table size 65537",
    },
    Broken {
        what: "missing interfaces",
        yaml: "\
pin_path: /sys/fs/bpf/xlb
",
        error: "broken.yaml:1:1: interfaces: missing; list at least one interface to attach to",
    },
    Broken {
        what: "VIP without a port",
        yaml: "\
interfaces: [{name: eth0}]
vips:
  - name: web
    address: 10.100.0.1
    protocol: tcp
    pool: web
",
        error: "broken.yaml:3:5: vips[0].port: missing; this key is required",
    },
    Broken {
        what: "backend listed twice",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  web:
    backends:
      - address: 10.0.0.11
      - address: 10.0.0.11
",
        error: "broken.yaml:7:18: pools.web.backends[1].address: backend 10.0.0.11 is listed twice",
    },
    Broken {
        what: "source prefix with host bits",
        yaml: "\
interfaces: [{name: eth0}]
encap:
  source_v4: 10.255.0.7/24
",
        error: "broken.yaml:3:14: encap.source_v4: \"10.255.0.7/24\" has host bits set after \
            the first 24",
    },
    Broken {
        what: "IPv6 prefix as source_v4",
        yaml: "\
interfaces: [{name: eth0}]
encap:
  source_v4: fd00::/112
",
        error: "broken.yaml:3:14: encap.source_v4: \"fd00::/112\" is not an IPv4 prefix",
    },
    Broken {
        what: "health-check timeout longer than its interval",
        yaml: "\
interfaces: [{name: eth0}]
pools:
  web:
    health_check:
      interval: 500ms
",
        error: "broken.yaml:5:17: pools.web.health_check.timeout: 1s is longer than the \
            interval 500ms",
    },
    Broken {
        what: "path on a tcp health check",
        yaml: "\
interfaces: [{name: eth0}]
pools:
  web:
    health_check:
      kind: tcp
      path: /healthz
",
        error: "broken.yaml:6:13: pools.web.health_check.path: applies to http checks only",
    },
    Broken {
        what: "port out of range",
        yaml: "\
interfaces: [{name: eth0}]
vips:
  - name: web
    port: 70000
",
        error: "broken.yaml:4:11: vips[0].port: ",
    },
    Broken {
        what: "duplicate key",
        yaml: "\
interfaces: [{name: eth0}]
interfaces: [{name: eth1}]
",
        error: "broken.yaml:2:1: ",
    },
    Broken {
        what: "outer source prefix covering every address",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 0.0.0.0/0}
",
        error: "broken.yaml:2:20: encap.source_v4: \"0.0.0.0/0\" is not a unicast prefix",
    },
    Broken {
        what: "multicast gateway MAC",
        yaml: "\
interfaces: [{name: eth0}]
encap: {gateway_mac: \"01:00:5e:00:00:01\"}
",
        error: "broken.yaml:2:22: encap.gateway_mac: \"01:00:5e:00:00:01\" is not a unicast MAC",
    },
    Broken {
        what: "interface name the kernel refuses",
        yaml: "\
interfaces: [{name: \"eth\\t0\"}]
",
        error: "broken.yaml:1:21: interfaces[0].name: \"eth\\t0\" is not an interface name",
    },
    Broken {
        what: "health-check path with a line break",
        yaml: "\
interfaces: [{name: eth0}]
pools:
  web:
    health_check: {kind: http, path: \"/x\\r\\nHost: y\"}
",
        error: "broken.yaml:4:38: pools.web.health_check.path: \
                \"/x\\r\\nHost: y\" is not a URL path",
    },
    Broken {
        what: "backend address written as a prefix",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
vips: [{name: web, address: 10.100.0.1, port: 80, protocol: tcp, pool: web}]
pools:
  web: {backends: [{address: 10.0.0.0/24}]}
",
        error: "broken.yaml:5:30: pools.web.backends[0].address: \
                \"10.0.0.0/24\" is not an IP address",
    },
    Broken {
        what: "autoscale without max",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.0/24}
pools:
  web:
    backends:
      - address: 10.0.0.11
      - {address: 10.0.0.12, standby: true}
    autoscale:
      target_tracking: {signal: new_connections, target: 10}
",
        error: "broken.yaml:9:7: pools.web.autoscale.max: missing; this key is required",
    },
    Broken {
        what: "autoscale on gpu without a load signal",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.0/24}
pools:
  web:
    backends:
      - address: 10.0.0.11
      - {address: 10.0.0.12, standby: true}
    autoscale:
      max: 2
      target_tracking: {signal: gpu, target: 0.6}
",
        error: "broken.yaml:10:33: pools.web.autoscale.target_tracking.signal: \
                signal gpu reads the pool's load_signal, which this pool does not have",
    },
    Broken {
        what: "autoscale max above the pool's backends",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.0/24}
pools:
  web:
    backends:
      - address: 10.0.0.11
      - {address: 10.0.0.12, standby: true}
    autoscale:
      max: 5
      target_tracking: {signal: new_connections, target: 10}
",
        error: "broken.yaml:9:12: pools.web.autoscale.max: 5 is more than the pool's 2 backends",
    },
    Broken {
        what: "forecast horizon out of range",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.0/24}
pools:
  web:
    backends:
      - address: 10.0.0.11
      - {address: 10.0.0.12, standby: true}
    autoscale:
      max: 2
      target_tracking: {signal: new_connections, target: 10}
      predictive: {horizon: 2h}
",
        error: "broken.yaml:11:29: pools.web.autoscale.predictive.horizon: 7200s is not 15m to 60m",
    },
    Broken {
        what: "standby backend without a standby autoscaler",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.0/24}
pools:
  web:
    backends:
      - address: 10.0.0.11
      - {address: 10.0.0.12, standby: true}
",
        error: "broken.yaml:7:9: pools.web.backends[1].standby: \
                applies only to pools whose autoscale actuator is standby",
    },
    Broken {
        what: "exec actuator without a command",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.0/24}
pools:
  web:
    backends:
      - address: 10.0.0.11
      - {address: 10.0.0.12}
    autoscale:
      max: 2
      target_tracking: {signal: new_connections, target: 10}
      actuator: {kind: exec, timeout: 5s}
",
        error: "broken.yaml:11:17: pools.web.autoscale.actuator.command: \
                missing; this key is required",
    },
    Broken {
        what: "SYN guard with a burst of 0",
        yaml: "\
interfaces: [{name: eth0}]
syn_guard:
  new_flows_per_second: 1000
  burst: 0
",
        error: "broken.yaml:4:10: syn_guard.burst: 0 is outside 1..=10000000 new flows",
    },
    Broken {
        what: "SYN guard with a negative rate",
        yaml: "\
interfaces: [{name: eth0}]
syn_guard: {new_flows_per_second: -5}
",
        error: "broken.yaml:2:35: syn_guard.new_flows_per_second: invalid u32",
    },
];

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
    Broken {
        what: "port pool naming an unknown pool",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
vips:
  - name: llm
    address: 10.100.0.1
    port: 8000
    protocol: tcp
    pool: chat
    port_pools: {8001: embeddings}
",
        error: "broken.yaml:12:24: vips[0].port_pools.8001: pool embeddings is not defined \
            under pools",
    },
    Broken {
        what: "port pool on the VIP's own port",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
vips:
  - name: llm
    address: 10.100.0.1
    port: 8000
    protocol: tcp
    pool: chat
    port_pools: {8000: chat-us}
",
        error: "broken.yaml:12:24: vips[0].port_pools.8000: port 8000 cannot take a pool of its \
            own: not 0, not the VIP's port",
    },
    Broken {
        what: "a port listed twice in port_pools",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
vips:
  - name: llm
    address: 10.100.0.1
    port: 8000
    protocol: tcp
    pool: chat
    port_pools: {8001: chat-us, 8001: chat}
",
        error: "broken.yaml:12:33: vips[0].port_pools: duplicate mapping key `8001` is not \
            allowed here",
    },
    Broken {
        what: "a port pool's port served by another VIP",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
vips:
  - {name: llm, address: 10.100.0.1, port: 8000, protocol: tcp, pool: chat,
     port_pools: {8001: chat-us}}
  - {name: tools, address: 10.100.0.1, port: 8001, protocol: tcp, pool: chat}
",
        error: "broken.yaml:9:28: vips[1].address: 10.100.0.1 port 8001 tcp is already served \
            by VIP llm",
    },
    Broken {
        what: "source rule prefix listed twice",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
tenants: {free: {new_flows_per_second: 100}}
vips:
  - name: llm
    address: 10.100.0.1
    port: 8000
    protocol: tcp
    pool: chat
    source_rules:
      - {prefix: 10.1.0.0/16, pool: chat-us}
      - {prefix: 10.1.0.0/16, tenant: free}
",
        error: "broken.yaml:15:18: vips[0].source_rules[1].prefix: prefix 10.1.0.0/16 is listed \
            twice",
    },
    Broken {
        what: "source rule with host bits set",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
vips:
  - name: llm
    address: 10.100.0.1
    port: 8000
    protocol: tcp
    pool: chat
    source_rules: [{prefix: 10.1.2.0/16, pool: chat-us}]
",
        error: "broken.yaml:12:29: vips[0].source_rules[0].prefix: \"10.1.2.0/16\" has host \
            bits set after the first 16",
    },
    Broken {
        what: "source rule of the other family",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
vips:
  - name: llm
    address: 10.100.0.1
    port: 8000
    protocol: tcp
    pool: chat
    source_rules: [{prefix: \"2001:db8::/32\", pool: chat-us}]
",
        error: "broken.yaml:12:29: vips[0].source_rules[0].prefix: \"2001:db8::/32\" is not an \
            IPv4 prefix, as the VIP's address",
    },
    Broken {
        what: "denied prefix with a pool",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
vips:
  - name: llm
    address: 10.100.0.1
    port: 8000
    protocol: tcp
    pool: chat
    source_rules: [{prefix: 192.0.2.0/24, deny: true, pool: chat-us}]
",
        error: "broken.yaml:12:61: vips[0].source_rules[0].pool: a denied prefix takes no pool \
            or tenant",
    },
    Broken {
        what: "source rule naming an unknown tenant",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
vips:
  - name: llm
    address: 10.100.0.1
    port: 8000
    protocol: tcp
    pool: chat
    source_rules: [{prefix: 10.2.0.0/16, tenant: free}]
",
        error: "broken.yaml:12:50: vips[0].source_rules[0].tenant: tenant free is not defined \
            under tenants",
    },
    Broken {
        what: "source rule that does nothing",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
vips:
  - name: llm
    address: 10.100.0.1
    port: 8000
    protocol: tcp
    pool: chat
    source_rules: [{prefix: 10.2.0.0/16}]
",
        error: "broken.yaml:12:20: vips[0].source_rules[0].pool: missing; a rule needs a pool, \
            a tenant or deny: true",
    },
    Broken {
        what: "canary share over 100%",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
vips:
  - name: llm
    address: 10.100.0.1
    port: 8000
    protocol: tcp
    pool: chat
    canary: {pool: chat-us, share: 120%}
",
        error: "broken.yaml:12:36: vips[0].canary.share: \"120%\" is not a share from 0% to \
            100%, as in 5% or 12.5%",
    },
    Broken {
        what: "canary on the VIP's own pool",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
vips:
  - name: llm
    address: 10.100.0.1
    port: 8000
    protocol: tcp
    pool: chat
    canary: {pool: chat, share: 5%}
",
        error: "broken.yaml:12:20: vips[0].canary.pool: pool chat is the VIP's own pool",
    },
    Broken {
        what: "canary rollback on load without a load signal",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
vips:
  - name: llm
    address: 10.100.0.1
    port: 8000
    protocol: tcp
    pool: chat
    canary:
      pool: chat-us
      share: 5%
      rollback: {max_load: 0.9}
",
        error: "broken.yaml:15:28: vips[0].canary.rollback.max_load: pool chat-us has no \
            load_signal to compare with",
    },
    Broken {
        what: "tenant without a rate",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
tenants:
  free: {burst: 20}
",
        error: "broken.yaml:7:9: tenants.free.new_flows_per_second: missing; this key is required",
    },
    Broken {
        what: "pool falling back to itself",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
  eu:
    backends: [{address: 10.0.0.31}]
    fallback: eu
",
        error: "broken.yaml:8:15: pools.eu.fallback: pool eu cannot fall back to itself",
    },
    Broken {
        what: "fallback to an unknown pool",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
  eu:
    backends: [{address: 10.0.0.31}]
    fallback: us
",
        error: "broken.yaml:8:15: pools.eu.fallback: pool us is not defined under pools",
    },
    Broken {
        what: "cost label that is not a number",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
  eu:
    backends:
      - {address: 10.0.0.31, labels: {cost: \"1\"}}
      - {address: 10.0.0.32, labels: {cost: cheap}}
    cost_aware: {spill_load: 0.8}
",
        error: "broken.yaml:9:9: pools.eu.backends[1].labels.cost: \"cheap\" is not a cost: a \
            number of at least 0, as in \"2.5\"",
    },
    Broken {
        what: "cost-aware spill load out of range",
        yaml: "\
interfaces: [{name: eth0}]
encap: {source_v4: 10.255.0.1}
pools:
  chat: {backends: [{address: 10.0.0.11}]}
  chat-us: {backends: [{address: 10.0.0.21}]}
  eu:
    backends: [{address: 10.0.0.31, labels: {cost: \"1\"}}]
    cost_aware: {spill_load: 1.5}
",
        error: "broken.yaml:8:30: pools.eu.cost_aware.spill_load: 1.5 is not a load in (0, 1], \
            as in 0.8",
    },
];

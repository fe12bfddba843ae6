//! Proof that LB nodes agree without sharing state: two nodes planning the
//! same config build the same table, slot for slot, however the config
//! lists its backends and whatever ids each node handed out before.
//!
//! What a node writes into `MAGLEV` are backend ids, and ids are node-local
//! handles into that node's `BACKENDS` (they depend on listing order and on
//! the node's history, see `ids`). What must agree between nodes is what a
//! slot *means*: the backend address behind it, and whether that backend
//! takes flows. The kernel picks slot `flow_hash(key) % table_size`, and
//! `flow_hash` is MurmurHash3 with a compiled-in seed over packet fields
//! only (`lb_common::hash`), so with equal resolved tables any node sends a
//! flow where any other would.

use std::collections::HashMap;
use std::net::IpAddr;

use lb_common::{FAMILY_V4, FlowKey, NO_BACKEND, PROTO_TCP, VipKey, flow_hash, hash::HashInput};

use super::desired::Health;
use super::from_config::desired_state;
use super::live::Live;
use super::plan::{Plan, plan};
use crate::config::Config;

/// One VIP's table as every node must see it: per slot, the backend
/// address (or `None` for an empty slot), plus the VIP's flags and size.
type Resolved = HashMap<VipKey, (u32, u32, Vec<Option<IpAddr>>)>;

/// Each backend's address and `BACKENDS` flags, by VIP key.
type Entries = HashMap<(VipKey, IpAddr), u32>;

fn resolve(plan: &Plan) -> (Resolved, Entries) {
    let mut tables = Resolved::new();
    for (key, vip) in &plan.vips {
        let slots = vip
            .table
            .iter()
            .map(|&id| (id != NO_BACKEND).then(|| plan.backends[&id].addr))
            .collect();
        tables.insert(*key, (vip.flags, vip.table_size, slots));
    }
    let mut entries = Entries::new();
    for backend in plan.backends.values() {
        let vip = plan.vips.iter().find(|(_, v)| v.id == backend.entry.vip_id);
        let (key, _) = vip.expect("every planned backend belongs to a planned VIP");
        entries.insert((*key, backend.addr), backend.entry.flags);
    }
    (tables, entries)
}

/// A config with two VIPs over pools listed in `order`, weights uneven.
fn config(order: &[usize]) -> Config {
    let weights = [1, 3, 2, 5, 1, 4];
    let backends: String = order
        .iter()
        .map(|&i| {
            format!(
                "      - {{address: 10.1.0.{}, weight: {}}}\n",
                i + 1,
                weights[i]
            )
        })
        .collect();
    let backends_v6: String = order
        .iter()
        .map(|&i| {
            format!(
                "      - {{address: 'fd00::{}', weight: {}}}\n",
                i + 1,
                weights[i]
            )
        })
        .collect();
    let vips = if order[0].is_multiple_of(2) {
        ["web", "api"]
    } else {
        ["api", "web"]
    };
    let vip = |name: &str| match name {
        "web" => {
            "  - {name: web, address: 10.100.0.1, port: 80, protocol: tcp, pool: a, \
                  table_size: 1009}\n"
        }
        _ => {
            "  - {name: api, address: 'fd10::1', port: 443, protocol: tcp, pool: b, \
              table_size: 1009}\n"
        }
    };
    let text = format!(
        "interfaces: [{{name: eth0}}]\n\
         encap: {{source_v4: 10.255.0.1, source_v6: 'fd00:ff::1'}}\n\
         vips:\n{}{}\
         pools:\n  a:\n    backends:\n{backends}  b:\n    backends:\n{backends_v6}",
        vip(vips[0]),
        vip(vips[1]),
    );
    Config::from_str(&text, "<fleet>")
        .expect("the test config is valid")
        .config
}

fn resolved_plan(config: &Config, live: &Live, health: &Health) -> (Resolved, Entries) {
    let desired = desired_state(config).expect("desired state");
    resolve(&plan(&desired, live, health).expect("plan"))
}

#[test]
fn two_nodes_listing_backends_differently_agree_slot_for_slot() {
    let node_a = resolved_plan(
        &config(&[0, 1, 2, 3, 4, 5]),
        &Live::default(),
        &Health::default(),
    );
    let node_b = resolved_plan(
        &config(&[5, 3, 1, 0, 4, 2]),
        &Live::default(),
        &Health::default(),
    );
    assert_eq!(node_a.0.len(), 2, "both VIPs are planned");
    assert_eq!(
        node_a, node_b,
        "tables and backend entries differ between nodes"
    );
}

#[test]
fn node_local_ids_differ_but_the_tables_they_resolve_to_do_not() {
    let forward = config(&[0, 1, 2, 3, 4, 5]);
    let reverse = config(&[5, 4, 3, 2, 1, 0]);
    let desired_a = desired_state(&forward).unwrap();
    let desired_b = desired_state(&reverse).unwrap();
    let plan_a = plan(&desired_a, &Live::default(), &Health::default()).unwrap();
    let plan_b = plan(&desired_b, &Live::default(), &Health::default()).unwrap();
    let ids = |p: &Plan| p.vips.values().map(|v| v.table.clone()).collect::<Vec<_>>();
    assert_ne!(
        ids(&plan_a),
        ids(&plan_b),
        "the test must exercise different ids"
    );
    assert_eq!(resolve(&plan_a), resolve(&plan_b));
}

#[test]
fn nodes_with_the_same_health_view_agree_after_a_backend_goes_down() {
    let mut health = Health::default();
    health.set("a", "10.1.0.4".parse().unwrap(), false);
    health.set("b", "fd00::2".parse().unwrap(), false);
    let node_a = resolved_plan(&config(&[0, 1, 2, 3, 4, 5]), &Live::default(), &health);
    let node_b = resolved_plan(&config(&[2, 4, 0, 5, 3, 1]), &Live::default(), &health);
    assert_eq!(node_a, node_b);
    let web = node_a
        .0
        .values()
        .find(|(_, _, t)| t[0].is_some_and(|a| a.is_ipv4()));
    let (_, _, slots) = web.expect("the IPv4 VIP");
    let down: IpAddr = "10.1.0.4".parse().unwrap();
    assert!(!slots.contains(&Some(down)), "a down backend holds no slot");
}

#[test]
fn the_flow_hash_depends_on_the_packet_alone() {
    // The same key hashed twice, by two hashers, gives the same slot: there
    // is no per-process or per-boot seed to make nodes disagree.
    let key = FlowKey {
        src: lb_common::v4_key_addr([192, 0, 2, 7]),
        dst: lb_common::v4_key_addr([10, 100, 0, 1]),
        sport_be: 40_000u16.to_be(),
        dport_be: 80u16.to_be(),
        proto: PROTO_TCP,
        family: FAMILY_V4,
        ..FlowKey::default()
    };
    let first = flow_hash(&key, HashInput::FiveTuple);
    assert_eq!(first, flow_hash(&key, HashInput::FiveTuple));
    // Pinned, so a change of seed or mixing (which would split a fleet
    // running two versions) fails here first.
    assert_eq!(first, FLOW_HASH_OF_TEST_KEY, "the flow hash changed");
}

/// `flow_hash` of the key in `the_flow_hash_depends_on_the_packet_alone`.
const FLOW_HASH_OF_TEST_KEY: u32 = 0x166a_b8ff;

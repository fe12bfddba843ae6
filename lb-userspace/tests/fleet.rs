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
mod fleet_bed;

use etcd_server::Etcd;
use fleet_bed::{Fleet, LINKS, ROUTER_BIRD, config, lb_bird, version};

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
    let _ = fleet.wait_paths("10.100.0.1", &both, "two nodes announce");

    fleet.stop_xlbd(0);
    let _ = fleet.wait_paths("10.100.0.1", &[LINKS[1].1], "node 1's xlbd stopped");
    fleet.start_xlbd(0, &endpoint);
    let _ = fleet.wait_paths("10.100.0.1", &both, "node 1's xlbd is back");

    let two_vips = config(2);
    fleet.push(&endpoint, &two_vips);
    for i in 0..2 {
        fleet.wait_version(i, &version(&two_vips));
    }
    let _ = fleet.wait_paths(
        "10.100.0.2",
        &both,
        "a VIP pushed to etcd is announced by both",
    );
}

//! The connection table of the benchmark: live flows written straight into
//! `FLOWS` from user space, and the frames of tracked and new flows.
//!
//! Live flows alternate between an IPv4 client of `V4_TCP` and an IPv6
//! client of `V6_TCP`; flow `i` has its own client address, so keys never
//! collide. New-flow SYNs come from another range of client addresses.

use std::{
    net::IpAddr,
    os::fd::{AsFd as _, AsRawFd as _},
};

use anyhow::{Context as _, bail};
use aya::maps::{HashMap, Map, MapData};
use lb_common::{Flow, FlowKey};

use crate::{
    xlb_frames::{TCP, ether4, ether6, ipv4, ipv6, tcp},
    xlb_harness::{Lb, TestVip, backend_of, flow_key},
    xlb_world::{V4_DF, V4_TCP, V6_TCP},
};

/// Client port of every live flow.
const LIVE_PORT: u16 = 40_000;
/// Client port of every new-flow SYN.
const SYN_PORT: u16 = 50_000;

/// Which client range a flow comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// Live IPv4 flow `n` (of `V4_TCP`).
    LiveV4(u32),
    /// Live IPv6 flow `n` (of `V6_TCP`).
    LiveV6(u32),
    /// New IPv4 flow `n`, never entered in `FLOWS` before its SYN.
    New(u32),
}

impl Client {
    /// The VIP the flow goes to.
    pub fn vip(self) -> TestVip {
        match self {
            Client::LiveV6(_) => V6_TCP,
            Client::LiveV4(_) | Client::New(_) => V4_TCP,
        }
    }

    fn addr_and_port(self) -> (IpAddr, u16) {
        match self {
            Client::LiveV4(n) => (v4_from(10, n), LIVE_PORT),
            Client::New(n) => (v4_from(172, n), SYN_PORT),
            Client::LiveV6(n) => {
                let mut a = [
                    0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ];
                a[12..].copy_from_slice(&n.to_be_bytes());
                (IpAddr::from(a), LIVE_PORT)
            }
        }
    }

    /// The flow's `FLOWS` key.
    pub fn key(self) -> FlowKey {
        let vip = self.vip();
        let (src, sport) = self.addr_and_port();
        flow_key(src, vip.addr, sport, vip.port, vip.proto)
    }

    /// A SYN (or a later segment) of the flow, untagged.
    pub fn frame(self, syn: bool) -> Vec<u8> {
        let vip = self.vip();
        let (src, sport) = self.addr_and_port();
        let segment = tcp(sport, vip.port, syn, 0);
        match (src, vip.addr) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                ether4(&ipv4(s.octets(), d.octets(), TCP, &segment, V4_DF))
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => ether6(&ipv6(s.octets(), d.octets(), TCP, &segment)),
            _ => unreachable!("clients and VIPs share a family"),
        }
    }
}

/// `first.x.y.z` with the low 24 bits of `n`.
fn v4_from(first: u8, n: u32) -> IpAddr {
    let [_, a, b, c] = n.to_be_bytes();
    IpAddr::from([first, a, b, c])
}

/// Live flow `i` of a table filled by [`fill`]: IPv4 for even `i`.
pub fn live(i: u32) -> Client {
    if i.is_multiple_of(2) {
        Client::LiveV4(i / 2)
    } else {
        Client::LiveV6(i / 2)
    }
}

/// Writes `count` live flows into `FLOWS`, each to a backend of its VIP.
///
/// # Errors
///
/// Fails when a write fails.
pub fn fill(lb: &mut Lb, count: u32) -> anyhow::Result<()> {
    let now = monotonic_ns();
    let mut map = flows_map(lb)?;
    for i in 0..count {
        let client = live(i);
        map.insert(client.key(), flow_value(client, i, now), 0)
            .with_context(|| format!("writing live flow {i} into FLOWS"))?;
    }
    Ok(())
}

/// Makes sure every one of `clients` is in `FLOWS` (an LRU map may have
/// evicted a few while it was filled); returns how many were written again.
///
/// # Errors
///
/// Fails when a read or write fails for another reason than absence.
pub fn ensure_tracked(lb: &mut Lb, clients: &[Client]) -> anyhow::Result<usize> {
    let now = monotonic_ns();
    let mut map = flows_map(lb)?;
    let mut rewritten = 0;
    for (i, &client) in clients.iter().enumerate() {
        if map.get(&client.key(), 0).is_err() {
            map.insert(client.key(), flow_value(client, i as u32, now), 0)
                .context("writing a tracked flow into FLOWS")?;
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

/// Removes `clients` from `FLOWS` (those present).
///
/// # Errors
///
/// Fails when `FLOWS` cannot be opened.
pub fn forget(lb: &mut Lb, clients: &[Client]) -> anyhow::Result<()> {
    let mut map = flows_map(lb)?;
    for client in clients {
        // Absent keys are fine: the SYN may have been evicted already.
        let _ = map.remove(&client.key());
    }
    Ok(())
}

/// The `memlock` line of `FLOWS`'s fdinfo, in bytes.
///
/// # Errors
///
/// Fails when `FLOWS` is missing or its fdinfo has no `memlock` line.
pub fn memlock(lb: &Lb) -> anyhow::Result<u64> {
    let Some(Map::LruHashMap(data)) = lb.ebpf.map("FLOWS") else {
        bail!("FLOWS is missing or not an LRU hash map");
    };
    let fd = data.fd().as_fd().as_raw_fd();
    let path = format!("/proc/self/fdinfo/{fd}");
    let info = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    info.lines()
        .find_map(|l| l.strip_prefix("memlock:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("{path} has no memlock line"))
}

fn flows_map(lb: &mut Lb) -> anyhow::Result<HashMap<&mut MapData, FlowKey, Flow>> {
    let map = lb.ebpf.map_mut("FLOWS").context("map FLOWS is missing")?;
    HashMap::try_from(map).context("FLOWS is not a hash map")
}

fn flow_value(client: Client, i: u32, now_ns: u64) -> Flow {
    let vip = client.vip();
    Flow {
        backend_id: backend_of(&vip, i % vip.backends).0,
        vip_id: vip.id,
        last_seen_ns: now_ns,
    }
}

/// `CLOCK_MONOTONIC` in ns, the clock of `bpf_ktime_get_ns`.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;

use lb_common::{FAMILY_V4, VipKey, v4_key_addr};

use super::*;
use crate::dataplane::{AdminState, DesiredBackend, DesiredVip};

/// Runs `body` on a thread of its own in a new network namespace with
/// `lo` up; the namespace goes with the thread.
fn in_fresh_netns(body: impl FnOnce() + Send + 'static) {
    let thread = std::thread::spawn(move || {
        // SAFETY: unshare(2) with CLONE_NEWNET only changes this thread's
        // namespace; no memory is involved.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        let error = std::io::Error::last_os_error();
        assert_eq!(rc, 0, "unshare(CLONE_NEWNET) failed (run as root): {error}");
        // A child forked from this thread starts in its namespace.
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        assert!(up.is_ok_and(|s| s.success()), "ip link set lo up failed");
        body();
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn routes_are_added_listed_and_deleted_in_the_table_given() {
    in_fresh_netns(|| {
        route::add(1000, ip("10.100.0.1")).unwrap();
        route::add(1000, ip("fd10::1")).unwrap();
        route::add(1001, ip("10.100.0.2")).unwrap();
        let mut listed = route::list(1000).unwrap();
        listed.sort();
        assert_eq!(listed, [ip("10.100.0.1"), ip("fd10::1")]);

        route::delete(1000, ip("10.100.0.1")).unwrap();
        route::delete(1000, ip("10.100.0.1")).expect("deleting twice is not an error");
        assert_eq!(route::list(1000).unwrap(), [ip("fd10::1")]);
        assert_eq!(route::list(1001).unwrap(), [ip("10.100.0.2")]);
    });
}

#[test]
fn an_announcer_takes_over_routes_left_behind_and_syncs_them() {
    in_fresh_netns(|| {
        route::add(7, ip("10.100.0.9")).unwrap();
        let mut announcer = Announcer::new(&Announce { table: 7 });
        assert!(announcer.announced().contains(&ip("10.100.0.9")));

        let wanted = BTreeSet::from([ip("10.100.0.1"), ip("fd10::1")]);
        announcer.sync(&wanted);
        let listed: BTreeSet<IpAddr> = route::list(7).unwrap().into_iter().collect();
        assert_eq!(
            listed, wanted,
            "the leftover is withdrawn, the wanted are there"
        );

        announcer.withdraw_all();
        assert!(route::list(7).unwrap().is_empty());
    });
}

fn state(backends: &[(AdminState, u32)]) -> DesiredState {
    let backends = backends
        .iter()
        .enumerate()
        .map(|(i, &(state, weight))| DesiredBackend {
            addr: IpAddr::from([10, 1, 0, i as u8 + 1]),
            weight,
            state,
        })
        .collect();
    let vip = DesiredVip {
        name: "web".to_owned(),
        key: VipKey {
            addr: v4_key_addr([10, 100, 0, 1]),
            family: FAMILY_V4,
            ..VipKey::default()
        },
        flags: 0,
        table_size: 13,
        pool: "web".to_owned(),
        backends,
        owner: None,
        ports: Vec::new(),
    };
    DesiredState {
        vips: vec![vip],
        ..DesiredState::default()
    }
}

#[test]
fn a_vip_is_servable_while_one_backend_takes_new_flows() {
    let both = state(&[(AdminState::Ready, 1), (AdminState::Ready, 1)]);
    let mut health = Health::default();
    assert_eq!(servable(&both, &health), BTreeSet::from([ip("10.100.0.1")]));

    health.set("web", ip("10.1.0.1"), false);
    assert_eq!(servable(&both, &health).len(), 1, "one backend is enough");
    health.set("web", ip("10.1.0.2"), false);
    assert!(servable(&both, &health).is_empty(), "every backend is down");
}

#[test]
fn draining_maint_and_zero_weight_backends_do_not_make_a_vip_servable() {
    let none = state(&[
        (AdminState::Drain, 1),
        (AdminState::Maint, 1),
        (AdminState::Ready, 0),
    ]);
    assert!(servable(&none, &Health::default()).is_empty());
}

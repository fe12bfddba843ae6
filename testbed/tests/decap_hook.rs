//! The decapsulation hook runs `xlbd decap ...` with the agreed arguments
//! inside each backend's namespace, with bpffs visible. A stand-in script
//! plays xlbd here, so this test does not depend on the real daemon.
//! Needs root; never skips.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use xlb_testbed::{Testbed, TestbedOptions, plan};

/// Writes a fake xlbd that records its arguments, its eth0 address and the
/// filesystem type of /sys/fs/bpf next to itself, then exits 0.
fn fake_xlbd(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("make fake xlbd dir");
    let script = dir.join("xlbd");
    let body = "#!/bin/sh\n\
        out=\"$(dirname \"$0\")/ran-$5\"\n\
        echo \"$@\" > \"$out\"\n\
        ip -o -4 addr show dev eth0 | awk '{print $4}' >> \"$out\"\n\
        stat -f -c %T /sys/fs/bpf >> \"$out\"\n";
    std::fs::write(&script, body).expect("write fake xlbd");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

#[test]
fn decap_hook_runs_xlbd_decap_in_every_backend_namespace_with_bpffs() {
    let dir = std::env::temp_dir().join(format!("xlb-fake-xlbd-{}", std::process::id()));
    let xlbd = fake_xlbd(&dir);
    let testbed = Testbed::new(TestbedOptions {
        backends: 2,
        start_backends: false,
        xlbd_bin: Some(xlbd),
        attach_decap: true,
        ..Default::default()
    })
    .expect("testbed builds with the decap hook");

    for k in 1..=2 {
        let v4 = plan::backend_v4(k);
        let record = std::fs::read_to_string(dir.join(format!("ran-{v4}")))
            .unwrap_or_else(|err| panic!("fake xlbd did not run for b{k}: {err}"));
        let pin = testbed.pin_path().join(format!("decap-b{k}"));
        let expected = format!(
            "decap --iface eth0 --addr {v4} --addr {} --pin-path {}\n{v4}/24\nbpf_fs\n",
            plan::backend_v6(k),
            pin.display()
        );
        assert_eq!(record, expected, "backend b{k}");
    }
    drop(testbed);
    std::fs::remove_dir_all(&dir).expect("remove fake xlbd dir");
}

#[test]
fn decap_hook_failure_names_the_backend_and_carries_the_log() {
    let testbed = Testbed::new(TestbedOptions {
        backends: 1,
        start_backends: false,
        xlbd_bin: Some(PathBuf::from("/bin/false")),
        ..Default::default()
    })
    .expect("testbed builds: the hook runs only when asked");

    let err = testbed
        .attach_decap(1)
        .expect_err("a failing xlbd fails the hook");
    let message = format!("{err:#}");
    assert!(
        message.contains("xlbd decap on backend b1 failed"),
        "message: {message}"
    );
}

//! Backend servers are real processes: killing one makes it stop answering,
//! restarting it brings it back. Needs root; never skips.

use std::path::PathBuf;

use xlb_testbed::{Testbed, TestbedOptions, plan};

#[test]
fn killed_backend_stops_answering_and_restarted_one_answers_again() {
    let testbed = Testbed::new(TestbedOptions {
        backends: 2,
        backend_bin: Some(PathBuf::from(env!("CARGO_BIN_EXE_xlb-backend"))),
        ..Default::default()
    })
    .expect("testbed builds");
    let b1 = plan::backend_socket_v4(1, 80);
    let b2 = plan::backend_socket_v6(2, 80);
    assert_eq!(
        testbed.http_get(b1).expect("b1 answers"),
        plan::backend_reply(1)
    );

    testbed.kill_backend(1).expect("kill b1");

    let err = testbed
        .http_get(b1)
        .expect_err("a killed backend must not answer");
    assert!(
        format!("{err:#}").contains("GET http://10.0.0.11:80/"),
        "error names the URL: {err:#}"
    );
    let udp = testbed.udp_query(plan::backend_socket_v4(1, plan::UDP_PORT));
    assert!(udp.is_err(), "a killed backend must not answer UDP");
    assert!(testbed.backend_process(1).expect("backend 1").is_none());
    assert_eq!(
        testbed.http_get(b2).expect("b2 still answers"),
        plan::backend_reply(2)
    );

    testbed.start_backend(1).expect("restart b1");

    assert_eq!(
        testbed.http_get(b1).expect("restarted b1 answers"),
        plan::backend_reply(1)
    );
    let udp = testbed.udp_query(plan::backend_socket_v4(1, plan::UDP_PORT));
    assert_eq!(
        udp.expect("restarted b1 answers UDP"),
        plan::backend_reply(1)
    );
}

//! End-to-end tests of `xlb_decap` on a veth between two namespaces.
//!
//! The "sender" namespace plays the load balancer: it writes encapsulated
//! frames onto its veth through an `AF_PACKET` socket. The "backend"
//! namespace holds the VIPs on `lo` and runs `xlb_decap` natively on its
//! veth, decapsulating for its own veth addresses. Checksum offload is left
//! as the kernel sets it on veth. Needs root.

mod decap_testbed;

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    os::fd::{AsRawFd, OwnedFd},
    process::Command,
    time::{Duration, Instant},
};

use decap_testbed::*;
use etherparse::{PacketBuilder, SlicedPacket};
use lb_common::DecapStat;
use xlb::decap::{self, Attached};

#[test]
fn encapsulated_udp_reaches_the_vip_socket_for_every_encapsulation() {
    let bed = Testbed::new();
    let vip4 = SocketAddr::new(VIP_V4.into(), 5300);
    let vip6 = SocketAddr::new(VIP_V6.into(), 5300);
    let (sock4, sock6) = (
        udp_socket_in(&bed.backend, vip4),
        udp_socket_in(&bed.backend, vip6),
    );
    let client4 = SocketAddr::new(CLIENT_V4.into(), 40000);
    let client6 = SocketAddr::new(CLIENT_V6.into(), 40000);
    let cases = [
        (
            "ipv4 in ipv4",
            client4,
            vip4,
            IpAddr::V4(BACKEND_V4),
            &sock4,
        ),
        (
            "ipv6 in ipv6",
            client6,
            vip6,
            IpAddr::V6(BACKEND_V6),
            &sock6,
        ),
        (
            "ipv4 in ipv6",
            client4,
            vip4,
            IpAddr::V6(BACKEND_V6),
            &sock4,
        ),
        (
            "ipv6 in ipv4",
            client6,
            vip6,
            IpAddr::V4(BACKEND_V4),
            &sock6,
        ),
    ];

    for (what, client, vip, outer, socket) in cases {
        let payload = format!("datagram {what}");
        bed.send(&encapsulate(
            &udp_packet(client, vip, payload.as_bytes()),
            outer,
        ));
        let mut buf = [0u8; 256];
        let (len, from) = socket
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{what}: no datagram on the vip: {e}"));
        assert_eq!(&buf[..len], payload.as_bytes(), "{what}: payload");
        assert_eq!(
            from, client,
            "{what}: the client's address, not the outer one"
        );
    }
    assert_eq!(bed.counters().get(DecapStat::Decapsulated), 4);
}

/// Waits on `socket` for the SYN-ACK from `vip` and returns its sequence.
fn syn_ack_seq(socket: &OwnedFd, vip: Ipv4Addr) -> u32 {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        // SAFETY: `buf` is a live buffer of the length passed.
        let len = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if len <= 0 {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let Ok(packet) = SlicedPacket::from_ethernet(&buf[..len as usize]) else {
            continue;
        };
        let from_vip = matches!(&packet.net, Some(etherparse::NetSlice::Ipv4(ip))
            if ip.header().source_addr() == vip);
        if let (true, Some(etherparse::TransportSlice::Tcp(tcp))) = (from_vip, &packet.transport)
            && tcp.syn()
            && tcp.ack()
        {
            return tcp.sequence_number();
        }
    }
    panic!("no syn-ack from the vip within {WAIT:?}");
}

fn tcp_segment(seq: u32, ack: Option<u32>, payload: &[u8]) -> Vec<u8> {
    let builder =
        PacketBuilder::ipv4(CLIENT_V4.octets(), VIP_V4.octets(), 64).tcp(40001, 8080, seq, 64240);
    let builder = match ack {
        Some(ack) => builder.ack(ack).psh(),
        None => builder.syn(),
    };
    let mut packet = Vec::new();
    builder.write(&mut packet, payload).expect("tcp segment");
    packet
}

#[test]
fn tcp_handshake_to_the_vip_completes_through_decap() {
    let bed = Testbed::new();
    let listener = in_netns(&bed.backend, || {
        TcpListener::bind((VIP_V4, 8080)).expect("listen on the vip")
    });
    let watcher = bed.packet_socket();
    let outer = IpAddr::V4(BACKEND_V4);

    let client_seq = 7_000;
    bed.send(&encapsulate(&tcp_segment(client_seq, None, &[]), outer));
    let server_seq = syn_ack_seq(&watcher, VIP_V4);
    bed.send(&encapsulate(
        &tcp_segment(client_seq + 1, Some(server_seq + 1), b"hello"),
        outer,
    ));

    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let deadline = Instant::now() + WAIT;
    let (mut stream, peer) = loop {
        match listener.accept() {
            Ok(accepted) => break accepted,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("handshake did not complete: {e}"),
        }
    };
    assert_eq!(peer, SocketAddr::new(CLIENT_V4.into(), 40001));
    stream.set_nonblocking(false).expect("blocking stream");
    stream.set_read_timeout(Some(WAIT)).expect("stream timeout");
    let mut data = [0u8; 5];
    stream
        .read_exact(&mut data)
        .expect("data after the handshake");
    assert_eq!(&data, b"hello");
    assert_eq!(bed.counters().get(DecapStat::Decapsulated), 2);
}

#[test]
fn plain_traffic_to_the_backend_still_works_with_decap_attached() {
    let bed = Testbed::new();
    for (flag, addr) in [
        ("-4", BACKEND_V4.to_string()),
        ("-6", BACKEND_V6.to_string()),
    ] {
        let ping = Command::new("ip")
            .args([
                "netns",
                "exec",
                &bed.sender,
                "ping",
                flag,
                "-c",
                "1",
                "-W",
                "2",
                &addr,
            ])
            .output()
            .expect("running ping");
        assert!(
            ping.status.success(),
            "ping {addr}: {}",
            String::from_utf8_lossy(&ping.stdout)
        );
    }

    let listener = in_netns(&bed.backend, || {
        TcpListener::bind((BACKEND_V4, 8081)).expect("listen")
    });
    let mut client = in_netns(&bed.sender, || {
        TcpStream::connect_timeout(&SocketAddr::new(BACKEND_V4.into(), 8081), WAIT)
            .expect("tcp connect to the backend")
    });
    client.write_all(b"plain").expect("write");
    let (mut server, _) = listener.accept().expect("accept");
    let mut data = [0u8; 5];
    server.read_exact(&mut data).expect("read");
    assert_eq!(&data, b"plain");

    let counters = bed.counters();
    assert_eq!(counters.get(DecapStat::Decapsulated), 0);
    assert!(
        counters.get(DecapStat::Passed) >= 4,
        "plain packets counted as passed"
    );
}

#[test]
fn attaching_again_adopts_and_detach_leaves_no_program_and_no_pins() {
    let bed = Testbed::new();
    let link = ip(&["-n", &bed.backend, "link", "show", IFACE]);
    assert!(
        link.contains("xdp") && !link.contains("xdpgeneric"),
        "native xdp on the veth: {link}"
    );

    assert_eq!(
        bed.attach(),
        Attached::Adopted,
        "a second attach updates the addresses"
    );

    decap::detach(&bed.pin_dir).expect("detach");
    let link = ip(&["-n", &bed.backend, "link", "show", IFACE]);
    assert!(!link.contains("xdp"), "no program left on the veth: {link}");
    assert!(!bed.pin_dir.exists(), "pin directory removed");
}

//! The two-namespace testbed of the `xlb_decap` end-to-end tests, and
//! packet builders for it.

use std::{
    fs::File,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::PathBuf,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use etherparse::{IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, PacketBuilder};
use xlb::decap::{self, AttachMode, Attached};

pub const SENDER_V4: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
pub const BACKEND_V4: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);
pub const SENDER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, 1);
pub const BACKEND_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, 2);
pub const VIP_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
pub const VIP_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x10);
/// A client address no namespace holds: replies to it leave the backend
/// and die in the sender namespace, which does not forward.
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 7);
pub const IFACE: &str = "veth0";
pub const WAIT: Duration = Duration::from_secs(3);

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// Two namespaces joined by a veth, `xlb_decap` attached on the backend
/// side; removes pins and namespaces on drop, panicking or not.
pub struct Testbed {
    /// The namespace playing the load balancer.
    pub sender: String,
    /// The namespace of the backend, running `xlb_decap`.
    pub backend: String,
    /// Where `xlb_decap` is pinned.
    pub pin_dir: PathBuf,
}

impl Testbed {
    pub fn new() -> Self {
        let id = format!(
            "{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        );
        let bed = Testbed {
            sender: format!("xlbdc-s-{id}"),
            backend: format!("xlbdc-b-{id}"),
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/xlb-decap-test-{id}")),
        };
        let (s, b) = (bed.sender.as_str(), bed.backend.as_str());
        for ns in [s, b] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "-n", s, "link", "add", IFACE, "type", "veth", "peer", "name", IFACE, "netns", b,
        ]);
        for (ns, v4, v6) in [(s, SENDER_V4, SENDER_V6), (b, BACKEND_V4, BACKEND_V6)] {
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", IFACE]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                IFACE,
                "nodad",
            ]);
            ip(&["-n", ns, "link", "set", IFACE, "up"]);
        }
        ip(&["-n", b, "addr", "add", &format!("{VIP_V4}/32"), "dev", "lo"]);
        ip(&[
            "-n",
            b,
            "addr",
            "add",
            &format!("{VIP_V6}/128"),
            "dev",
            "lo",
        ]);
        ip(&[
            "-n",
            b,
            "route",
            "add",
            "default",
            "via",
            &SENDER_V4.to_string(),
        ]);
        ip(&[
            "-n",
            b,
            "-6",
            "route",
            "add",
            "default",
            "via",
            &SENDER_V6.to_string(),
        ]);
        bed.attach();
        bed
    }

    /// Attaches (or re-attaches) `xlb_decap` on the backend's veth.
    pub fn attach(&self) -> Attached {
        let pin_dir = self.pin_dir.clone();
        in_netns(&self.backend, move || {
            let addrs = [IpAddr::V4(BACKEND_V4), IpAddr::V6(BACKEND_V6)];
            decap::attach(IFACE, &addrs, &pin_dir, AttachMode::Native)
        })
        .unwrap_or_else(|e| panic!("attaching xlb_decap: {e:#}"))
    }

    pub fn mac(&self, ns: &str) -> [u8; 6] {
        let out = ip(&["-n", ns, "-br", "link", "show", IFACE]);
        let text = out.split_whitespace().nth(2).expect("mac in `ip -br link`");
        let mut mac = [0u8; 6];
        for (byte, hex) in mac.iter_mut().zip(text.split(':')) {
            *byte = u8::from_str_radix(hex, 16).expect("mac byte");
        }
        mac
    }

    /// Sends `packet` (an outer IP packet) from the sender to the backend.
    pub fn send(&self, packet: &[u8]) {
        let ethertype: u16 = if packet[0] >> 4 == 4 { 0x0800 } else { 0x86dd };
        let mut frame = self.mac(&self.backend).to_vec();
        frame.extend_from_slice(&self.mac(&self.sender));
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.extend_from_slice(packet);
        let socket = self.packet_socket();
        // SAFETY: `frame` is a live buffer of the length passed.
        let sent = unsafe { libc::send(socket.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            sent,
            frame.len() as isize,
            "sending a frame: {}",
            std::io::Error::last_os_error()
        );
    }

    /// An `AF_PACKET` socket on the sender's veth that sees every frame.
    pub fn packet_socket(&self) -> OwnedFd {
        in_netns(&self.sender, || {
            let all = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: plain socket(2) call; the fd is owned below.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(all)) };
            assert!(
                fd >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: `fd` is a fresh descriptor owned by nobody else.
            let socket = unsafe { OwnedFd::from_raw_fd(fd) };
            let name = std::ffi::CString::new(IFACE).expect("iface name");
            // SAFETY: `name` is a valid C string.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            // SAFETY: all-zero is a valid `sockaddr_ll`.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = all;
            addr.sll_ifindex = ifindex as i32;
            let len = size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: `addr` is a valid `sockaddr_ll` of `len` bytes.
            let rc = unsafe { libc::bind(fd, (&raw const addr).cast(), len) };
            assert_eq!(
                rc,
                0,
                "binding AF_PACKET: {}",
                std::io::Error::last_os_error()
            );
            socket
        })
    }

    pub fn counters(&self) -> decap::DecapCounters {
        decap::stats(&self.pin_dir).expect("xlb_decap counters")
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = decap::detach(&self.pin_dir);
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        for ns in [&self.sender, &self.backend] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `ip ARGS`, panicking with its stderr on failure; returns stdout.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `f` on a thread inside network namespace `ns`. Sockets it creates
/// stay in `ns` whatever thread uses them later.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
        // SAFETY: `file` is an open netns file; setns only affects this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("thread in the namespace")
}

/// An IP packet from `src` to `dst` carrying UDP `payload`.
pub fn udp_packet(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let builder = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    };
    let mut packet = Vec::new();
    builder
        .udp(src.port(), dst.port())
        .write(&mut packet, payload)
        .expect("udp packet");
    packet
}

/// `inner` behind an outer header from the sender to the backend in the
/// family of `outer`.
pub fn encapsulate(inner: &[u8], outer: IpAddr) -> Vec<u8> {
    let proto = if inner[0] >> 4 == 4 {
        IpNumber::IPV4
    } else {
        IpNumber::IPV6
    };
    let mut packet = match outer {
        IpAddr::V4(dst) => {
            let mut header = Ipv4Header::new(
                inner.len() as u16,
                64,
                proto,
                SENDER_V4.octets(),
                dst.octets(),
            )
            .expect("outer ipv4 header");
            header.header_checksum = header.calc_header_checksum();
            header.to_bytes().to_vec()
        }
        IpAddr::V6(dst) => Ipv6Header {
            traffic_class: 0,
            flow_label: Ipv6FlowLabel::ZERO,
            payload_length: inner.len() as u16,
            next_header: proto,
            hop_limit: 64,
            source: SENDER_V6.octets(),
            destination: dst.octets(),
        }
        .to_bytes()
        .to_vec(),
    };
    packet.extend_from_slice(inner);
    packet
}

pub fn udp_socket_in(ns: &str, addr: SocketAddr) -> UdpSocket {
    let socket = in_netns(ns, move || {
        UdpSocket::bind(addr).expect("binding udp on the vip")
    });
    socket.set_read_timeout(Some(WAIT)).expect("udp timeout");
    socket
}

//! Hostile backends on 127.0.0.0/8 for the health-check and load-signal
//! hardening tests: each behaviour on its own port, all served by a
//! runtime on a thread of their own, so the tokio tasks of the process
//! under test are counted apart from theirs.

#![allow(dead_code, reason = "each test binary uses part of the servers")]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A gigabyte, the declared size of [`Behaviour::Gigabyte`]'s body.
pub const GIGABYTE: usize = 1 << 30;

/// How a hostile backend treats each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Behaviour {
    /// Accepts, reads, never answers; closes when the peer does.
    NeverAnswer,
    /// Accepts, then resets the connection at once (SO_LINGER 0).
    ResetOnAccept,
    /// Reads the request head, then resets the connection.
    ResetAfterRequest,
    /// Reads the request head, waits this long, then answers 200.
    Slow(Duration),
    /// Sends a head promising 100000 bytes, then one byte every 50 ms.
    Trickle,
    /// 200 with a one-gigabyte body, written as fast as it is read.
    Gigabyte,
    /// A well-formed 500.
    Status500,
    /// Bytes that are not HTTP, then a close.
    Garbage,
}

impl Behaviour {
    /// Every behaviour, with `slow` as the delay of the slow one.
    pub fn all(slow: Duration) -> [Behaviour; 8] {
        [
            Behaviour::NeverAnswer,
            Behaviour::ResetOnAccept,
            Behaviour::ResetAfterRequest,
            Behaviour::Slow(slow),
            Behaviour::Trickle,
            Behaviour::Gigabyte,
            Behaviour::Status500,
            Behaviour::Garbage,
        ]
    }

    /// A short name, for pool names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::NeverAnswer => "never-answer",
            Behaviour::ResetOnAccept => "reset-on-accept",
            Behaviour::ResetAfterRequest => "reset-after-request",
            Behaviour::Slow(_) => "slow",
            Behaviour::Trickle => "trickle",
            Behaviour::Gigabyte => "gigabyte",
            Behaviour::Status500 => "status-500",
            Behaviour::Garbage => "garbage",
        }
    }
}

/// Hostile backends, one port per behaviour, all on one address; they
/// stop when this is dropped.
pub struct HostileServers {
    /// Each behaviour and where it listens.
    pub addrs: Vec<(Behaviour, SocketAddr)>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostileServers {
    /// Serves each of `behaviours` on `ip`, on free ports.
    pub fn start(ip: IpAddr, behaviours: &[Behaviour]) -> Self {
        let behaviours = behaviours.to_vec();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the hostile servers");
            runtime.block_on(async move {
                let mut addrs = Vec::new();
                for behaviour in behaviours {
                    let listener = TcpListener::bind((ip, 0)).await.expect("bind");
                    addrs.push((behaviour, listener.local_addr().expect("address")));
                    tokio::spawn(accept_loop(listener, behaviour));
                }
                ready_tx.send(addrs).expect("the test waits");
                let _ = stopped.await;
            });
        });
        let addrs = ready_rx.recv().expect("the hostile servers start");
        Self {
            addrs,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Where `behaviour` listens.
    pub fn addr(&self, behaviour: Behaviour) -> SocketAddr {
        let found = self.addrs.iter().find(|(b, _)| *b == behaviour);
        found.expect("a behaviour that was started").1
    }
}

impl Drop for HostileServers {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, behaviour: Behaviour) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve(stream, behaviour));
    }
}

async fn serve(mut stream: TcpStream, behaviour: Behaviour) {
    if behaviour == Behaviour::ResetOnAccept {
        reset(stream);
        return;
    }
    if !read_head(&mut stream).await {
        return;
    }
    match behaviour {
        Behaviour::NeverAnswer => drain(&mut stream).await,
        Behaviour::ResetOnAccept | Behaviour::ResetAfterRequest => reset(stream),
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            let _ = stream.write_all(OK.as_bytes()).await;
        }
        Behaviour::Trickle => trickle(&mut stream).await,
        Behaviour::Gigabyte => gigabyte(&mut stream).await,
        Behaviour::Status500 => {
            let _ = stream.write_all(ERROR.as_bytes()).await;
        }
        Behaviour::Garbage => {
            let _ = stream.write_all(b"\xff\xfe\x00garbage\r\n\r\n").await;
        }
    }
}

/// A 200 whose body a load signal reads as 50 % GPU use.
const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 24\r\nconnection: close\r\n\r\n\
                  DCGM_FI_DEV_GPU_UTIL 50\n";
const ERROR: &str = "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n";

/// Reads up to the end of a request head; false if the peer went first.
async fn read_head(stream: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// Reads and discards until the peer closes.
async fn drain(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Closes with an RST instead of a FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn trickle(stream: &mut TcpStream) {
    let head = b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n";
    if stream.write_all(head).await.is_err() {
        return;
    }
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if stream.write_all(b"#").await.is_err() {
            return;
        }
    }
}

async fn gigabyte(stream: &mut TcpStream) {
    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {GIGABYTE}\r\n\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let chunk = vec![b'#'; 64 * 1024];
    let mut sent = 0;
    while sent < GIGABYTE {
        if stream.write_all(&chunk).await.is_err() {
            return;
        }
        sent += chunk.len();
    }
}

/// This process's open file descriptors.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// This process's resident set, in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:"));
    let kib = line.and_then(|l| l.split_whitespace().nth(1));
    kib.and_then(|k| k.parse().ok()).unwrap_or(0)
}

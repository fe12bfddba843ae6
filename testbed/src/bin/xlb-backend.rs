//! A testbed backend: answers every HTTP GET on [::]:80 and [::]:8080 and
//! every UDP datagram on [::]:5353 with "backend NAME\n". Sockets are dual
//! stack, so IPv4 and IPv6 clients both reach it.
//!
//! Two paths are different, for load-signal tests: `GET /metrics` answers
//! Prometheus text as dcgm-exporter, vLLM and node_exporter write it (GPU
//! utilisation, KV-cache usage, waiting requests, CPU seconds by mode),
//! and `GET /set-load?gpu=95&kv=0.5&waiting=3&cpu=0.4` sets what it
//! reports (GPU in percent, KV cache and CPU busy as shares, waiting as a
//! count; keys left out keep their values).
//!
//! Example: `ip netns exec P-b1 xlb-backend --name b1`

use std::convert::Infallible;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn6, sockopt};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Serve "backend NAME\n" over HTTP and UDP.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Name put in every answer, e.g. `--name b1` answers "backend b1\n".
    #[arg(long)]
    name: String,
    /// TCP ports to serve HTTP on (repeatable), e.g. `--http-port 80`.
    #[arg(long = "http-port", default_values_t = [80, 8080])]
    http_ports: Vec<u16>,
    /// UDP port to answer datagrams on, e.g. `--udp-port 5353`.
    #[arg(long, default_value_t = 5353)]
    udp_port: u16,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(err) = run(Args::parse()).await {
        eprintln!("xlb-backend: {err:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<()> {
    let reply = Bytes::from(format!("backend {}\n", args.name));

    // Bind everything before serving: the testbed takes an accepting last
    // port as "all sockets bound".
    let udp = UdpSocket::from_std(dual_stack(Type::DGRAM, args.udp_port)?.into())
        .context("register udp socket")?;
    let mut listeners = Vec::new();
    for &port in &args.http_ports {
        let socket = dual_stack(Type::STREAM, port)?;
        socket
            .listen(1024)
            .with_context(|| format!("listen on tcp port {port}"))?;
        let listener = tokio::net::TcpListener::from_std(socket.into())
            .with_context(|| format!("register tcp listener on port {port}"))?;
        listeners.push(listener);
    }
    eprintln!(
        "xlb-backend {}: http on [::]:{:?}, udp on [::]:{}",
        args.name, args.http_ports, args.udp_port
    );

    let load = Arc::new(Mutex::new(Load::new(&args.name)));
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        tasks.spawn(serve_http(listener, reply.clone(), Arc::clone(&load)));
    }
    tasks.spawn(serve_udp(udp, reply));
    match tasks.join_next().await {
        Some(result) => result.context("server task panicked")?,
        None => Ok(()),
    }
}

/// A non-blocking IPv6 socket on [::]:port that also takes IPv4.
fn dual_stack(kind: Type, port: u16) -> Result<Socket> {
    let protocol = if kind == Type::STREAM {
        Protocol::TCP
    } else {
        Protocol::UDP
    };
    let socket = Socket::new(Domain::IPV6, kind, Some(protocol)).context("create socket")?;
    socket.set_only_v6(false).context("clear IPV6_V6ONLY")?;
    socket.set_reuse_address(true).context("set SO_REUSEADDR")?;
    socket.set_nonblocking(true).context("set O_NONBLOCK")?;
    let addr = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    socket
        .bind(&addr.into())
        .with_context(|| format!("bind [::]:{port}"))?;
    Ok(socket)
}

async fn serve_http(
    listener: tokio::net::TcpListener,
    reply: Bytes,
    load: Arc<Mutex<Load>>,
) -> Result<()> {
    let reply = Arc::new(reply);
    loop {
        let (stream, _) = listener.accept().await.context("accept tcp connection")?;
        let (reply, load) = (Arc::clone(&reply), Arc::clone(&load));
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let body = match request.uri().path() {
                "/metrics" => Bytes::from(lock(&load).exposition()),
                "/set-load" => Bytes::from(lock(&load).set(request.uri().query().unwrap_or(""))),
                _ => Bytes::clone(&reply),
            };
            async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
        });
        tokio::spawn(async move {
            // A client that goes away mid-request is not the server's error.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What `/metrics` reports; `/set-load` changes it.
struct Load {
    name: String,
    /// GPU utilisation, in percent.
    gpu_percent: f64,
    /// KV-cache usage, 0..1.
    kv_cache: f64,
    /// Requests waiting.
    waiting: f64,
    /// Share of CPU time busy, 0..1.
    cpu_busy: f64,
    /// Seconds per (cpu, mode), advanced at each scrape by `cpu_busy`.
    cpu_seconds: [[f64; 3]; 2],
    last_scrape: Instant,
}

/// node_exporter's modes, in `cpu_seconds` order.
const CPU_MODES: [&str; 3] = ["idle", "system", "user"];

impl Load {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            gpu_percent: 10.0,
            kv_cache: 0.1,
            waiting: 0.0,
            cpu_busy: 0.1,
            cpu_seconds: [[81_234.5, 1_201.25, 3_502.0], [80_998.0, 1_188.5, 3_611.75]],
            last_scrape: Instant::now(),
        }
    }

    /// Sets the values named in `query` (`gpu=95&kv=0.5`); answers what
    /// it reports now.
    fn set(&mut self, query: &str) -> String {
        for pair in query.split('&') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            match key {
                "gpu" => self.gpu_percent = value,
                "kv" => self.kv_cache = value,
                "waiting" => self.waiting = value,
                "cpu" => self.cpu_busy = value.clamp(0.0, 1.0),
                _ => {}
            }
        }
        format!(
            "gpu={} kv={} waiting={} cpu={}\n",
            self.gpu_percent, self.kv_cache, self.waiting, self.cpu_busy
        )
    }

    /// The three exporters' text, as one body.
    fn exposition(&mut self) -> String {
        let elapsed = self.last_scrape.elapsed().as_secs_f64();
        self.last_scrape = Instant::now();
        for cpu in &mut self.cpu_seconds {
            cpu[0] += elapsed * (1.0 - self.cpu_busy);
            cpu[1] += elapsed * self.cpu_busy * 0.25;
            cpu[2] += elapsed * self.cpu_busy * 0.75;
        }

        let (name, vllm) = (&self.name, "engine=\"0\",model_name=\"testbed-model\"");
        let mut text = format!(
            "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n\
             # TYPE DCGM_FI_DEV_GPU_UTIL gauge\n\
             DCGM_FI_DEV_GPU_UTIL{{gpu=\"0\",UUID=\"GPU-00000000-0000-0000-0000-{name:0>12}\",\
             device=\"nvidia0\",modelName=\"NVIDIA A100-SXM4-80GB\",Hostname=\"{name}\"}} {}\n\
             # HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n\
             # TYPE vllm:kv_cache_usage_perc gauge\n\
             vllm:kv_cache_usage_perc{{{vllm}}} {}\n\
             # HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n\
             # TYPE vllm:num_requests_waiting gauge\n\
             vllm:num_requests_waiting{{{vllm}}} {}\n\
             # HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n\
             # TYPE node_cpu_seconds_total counter\n",
            self.gpu_percent, self.kv_cache, self.waiting
        );
        for (cpu, seconds) in self.cpu_seconds.iter().enumerate() {
            for (mode, value) in CPU_MODES.iter().zip(seconds) {
                text.push_str(&format!(
                    "node_cpu_seconds_total{{cpu=\"{cpu}\",mode=\"{mode}\"}} {value:.2}\n"
                ));
            }
        }
        text
    }
}

/// The load, whatever a panicking request left (plain numbers).
fn lock(load: &Mutex<Load>) -> std::sync::MutexGuard<'_, Load> {
    load.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Answers every datagram from the address it was sent to: with direct
/// server return that is a VIP on lo, while routing alone would pick eth0's
/// address and the client's connected socket would drop the reply.
async fn serve_udp(socket: UdpSocket, reply: Bytes) -> Result<()> {
    // On a dual-stack socket this also reports IPv4 destinations, as
    // v4-mapped addresses (Linux ip6_datagram_recv_common_ctl).
    socket::setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)
        .context("set IPV6_RECVPKTINFO")?;
    let mut buf = vec![0u8; 2048];
    loop {
        let (peer, local) = socket
            .async_io(Interest::READABLE, || receive(&socket, &mut buf))
            .await
            .context("receive datagram")?;
        // A reply that cannot be sent is dropped, as UDP would.
        let _ = socket
            .async_io(Interest::WRITABLE, || {
                send_from(&socket, &reply, &peer, local)
            })
            .await;
    }
}

/// Receives one datagram; returns its sender and the local address it was
/// sent to.
fn receive(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(SockaddrIn6, Option<libc::in6_pktinfo>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!(libc::in6_pktinfo);
    let fd = socket.as_raw_fd();
    let msg = socket::recvmsg::<SockaddrIn6>(fd, &mut iov, Some(&mut space), MsgFlags::empty())?;
    let local = msg.cmsgs()?.find_map(|cmsg| match cmsg {
        ControlMessageOwned::Ipv6PacketInfo(info) => Some(info),
        _ => None,
    });
    let peer = msg
        .address
        .ok_or_else(|| io::Error::other("datagram without a sender"))?;
    Ok((peer, local))
}

/// Sends `reply` to `peer` with source address `local` (any interface).
fn send_from(
    socket: &UdpSocket,
    reply: &[u8],
    peer: &SockaddrIn6,
    local: Option<libc::in6_pktinfo>,
) -> io::Result<usize> {
    let source = local.map(|info| libc::in6_pktinfo {
        ipi6_addr: info.ipi6_addr,
        ipi6_ifindex: 0,
    });
    let cmsgs: Vec<ControlMessage<'_>> =
        source.iter().map(ControlMessage::Ipv6PacketInfo).collect();
    let iov = [IoSlice::new(reply)];
    Ok(socket::sendmsg(
        socket.as_raw_fd(),
        &iov,
        &cmsgs,
        MsgFlags::empty(),
        Some(peer),
    )?)
}

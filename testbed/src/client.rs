//! Client-side traffic: HTTP GETs on fresh connections, UDP queries, request
//! batches, and long-lived keep-alive connections. The functions here open
//! their sockets in the calling thread's namespace; `Testbed` runs them in
//! the client namespace.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// How long one request may take, connect to last byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// An HTTP agent that opens a new connection for every request.
pub(crate) fn agent() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .proxy(None)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build();
    ureq::Agent::new_with_config(config)
}

/// GETs `/` from `target` over a new connection and returns the body.
///
/// # Errors
/// On connect, timeout, a non-2xx status, or a body that is not UTF-8.
pub(crate) fn http_get_with(agent: &ureq::Agent, target: SocketAddr) -> Result<String> {
    let url = format!("http://{target}/");
    let mut response = agent
        .get(&url)
        .header("Connection", "close")
        .call()
        .with_context(|| format!("GET {url}"))?;
    response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("read body of GET {url}"))
}

/// GETs `/` from `target` over a new connection bound to `source` (an
/// address of the calling thread's namespace) and returns the body.
///
/// # Errors
/// On bind, connect or timeout, a status other than 200, or a reply
/// without a body.
pub(crate) fn http_get_from(source: std::net::IpAddr, target: SocketAddr) -> Result<String> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};

    let domain = Domain::for_address(target);
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP)).context("tcp socket")?;
    socket
        .bind(&SockAddr::from(SocketAddr::new(source, 0)))
        .with_context(|| format!("bind to {source}"))?;
    socket
        .connect_timeout(&SockAddr::from(target), REQUEST_TIMEOUT)
        .with_context(|| format!("connect from {source} to {target}"))?;
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .context("set read timeout")?;
    let request = format!("GET / HTTP/1.0\r\nHost: {target}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .with_context(|| format!("send request to {target}"))?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .with_context(|| format!("read reply from {target}"))?;
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .with_context(|| format!("reply from {target} has no body: {reply:?}"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!(
            "GET from {source} to {target}: {}",
            head.lines().next().unwrap_or("")
        );
    }
    Ok(body.to_owned())
}

/// Sends one datagram to `target` and returns the reply as text.
///
/// # Errors
/// On socket errors, or when no reply comes within `REQUEST_TIMEOUT`.
pub(crate) fn udp_query(target: SocketAddr, payload: &[u8]) -> Result<String> {
    let local: SocketAddr = match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).context("bind udp socket")?;
    socket
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .context("set udp read timeout")?;
    socket
        .connect(target)
        .with_context(|| format!("connect udp socket to {target}"))?;
    socket
        .send(payload)
        .with_context(|| format!("send datagram to {target}"))?;
    let mut buf = [0u8; 2048];
    let len = socket
        .recv(&mut buf)
        .with_context(|| format!("no udp reply from {target}"))?;
    Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
}

/// What a batch of requests saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// Answers per backend name ("b1", ...), taken from "backend bK\n"
    /// bodies; other bodies count under their trimmed text.
    pub per_backend: BTreeMap<String, usize>,
    /// Requests that failed.
    pub failures: usize,
    /// The first few failure messages (at most `MAX_ERRORS_KEPT`).
    pub errors: Vec<String>,
}

/// How many failure messages `RequestStats` keeps.
pub const MAX_ERRORS_KEPT: usize = 10;

impl RequestStats {
    /// Requests that were answered.
    pub fn answered(&self) -> usize {
        self.per_backend.values().sum()
    }

    /// Counts one answer with `body`.
    pub(crate) fn record_answer(&mut self, body: &str) {
        let name = body.trim().strip_prefix("backend ").unwrap_or(body.trim());
        *self.per_backend.entry(name.to_owned()).or_default() += 1;
    }

    /// Counts one failure.
    pub(crate) fn record_failure(&mut self, error: &anyhow::Error) {
        self.failures += 1;
        if self.errors.len() < MAX_ERRORS_KEPT {
            self.errors.push(format!("{error:#}"));
        }
    }
}

/// A TCP connection from the client that sends HTTP/1.1 keep-alive requests,
/// one after another over the same connection (to check a connection
/// survives changes).
#[derive(Debug)]
pub struct KeepAliveConn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Bytes read past the end of the last response.
    pending: Vec<u8>,
}

impl KeepAliveConn {
    /// Connects to `target` from the calling thread's namespace.
    pub(crate) fn connect(target: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&target, REQUEST_TIMEOUT)
            .with_context(|| format!("connect to {target}"))?;
        stream
            .set_read_timeout(Some(REQUEST_TIMEOUT))
            .context("set read timeout")?;
        stream.set_nodelay(true).context("set TCP_NODELAY")?;
        Ok(KeepAliveConn {
            stream,
            peer: target,
            pending: Vec::new(),
        })
    }

    /// The address connected to.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The client's end of the connection.
    ///
    /// # Errors
    /// When the socket has no local address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.stream
            .local_addr()
            .context("local address of keep-alive connection")
    }

    /// Sends `GET /` on this connection and returns the body.
    ///
    /// # Errors
    /// When the connection fails or closes, the status is not 200, or the
    /// reply is malformed.
    pub fn get(&mut self) -> Result<String> {
        let peer = self.peer;
        let request = format!("GET / HTTP/1.1\r\nHost: {peer}\r\nConnection: keep-alive\r\n\r\n");
        self.stream
            .write_all(request.as_bytes())
            .with_context(|| format!("send request on keep-alive connection to {peer}"))?;

        let (status, body_start, length) = self.read_head()?;
        while self.pending.len() < body_start + length {
            self.fill()?;
        }
        let body =
            String::from_utf8_lossy(&self.pending[body_start..body_start + length]).into_owned();
        self.pending.drain(..body_start + length);
        if status != 200 {
            bail!(
                "keep-alive connection to {peer} got status {status}: {}",
                body.trim()
            );
        }
        Ok(body)
    }

    /// Reads until a full response head is buffered; returns its status, the
    /// offset of the body and its Content-Length.
    fn read_head(&mut self) -> Result<(u16, usize, usize)> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            let parsed = response
                .parse(&self.pending)
                .with_context(|| format!("malformed response from {}", self.peer))?;
            if let httparse::Status::Complete(head_len) = parsed {
                let length = content_length(response.headers)
                    .with_context(|| format!("response from {} lacks Content-Length", self.peer))?;
                return Ok((response.code.unwrap_or(0), head_len, length));
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> Result<()> {
        let mut buf = [0u8; 4096];
        let len = self
            .stream
            .read(&mut buf)
            .with_context(|| format!("read from keep-alive connection to {}", self.peer))?;
        if len == 0 {
            bail!("keep-alive connection to {} closed by the peer", self.peer);
        }
        self.pending.extend_from_slice(&buf[..len]);
        Ok(())
    }
}

fn content_length(headers: &[httparse::Header<'_>]) -> Option<usize> {
    let header = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))?;
    std::str::from_utf8(header.value).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_count_backends_by_name() {
        let mut stats = RequestStats::default();
        stats.record_answer("backend b1\n");
        stats.record_answer("backend b1\n");
        stats.record_answer("backend b2\n");
        stats.record_failure(&anyhow::anyhow!("refused"));
        assert_eq!(stats.per_backend["b1"], 2);
        assert_eq!(stats.per_backend["b2"], 1);
        assert_eq!((stats.answered(), stats.failures), (3, 1));
    }
}

//! Just enough HTTP/1.1 for etcd's JSON gateway: one POST per connection,
//! a JSON body back, either sized or chunked (the watch streams one JSON
//! message per chunk for as long as it runs).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long to wait for an endpoint to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest header block read from a response, in bytes.
const MAX_HEADER_BYTES: usize = 16 << 10;

/// Posts `body` to `path` on `endpoint` (`host:port`) and returns a reader
/// of the response body. `read_timeout` bounds each read (`None` for a
/// watch, which may be quiet for hours).
///
/// # Errors
///
/// When no connection can be made, the request cannot be sent, or the
/// answer is not HTTP 200.
pub fn post(
    endpoint: &str,
    path: &str,
    body: &[u8],
    read_timeout: Option<Duration>,
) -> io::Result<Box<dyn BufRead + Send>> {
    let addr = endpoint
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other(format!("{endpoint} resolves to no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(read_timeout)?;
    if read_timeout.is_none() {
        keep_alive(&stream)?;
    }
    stream.set_write_timeout(Some(CONNECT_TIMEOUT))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {endpoint}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;

    let mut reader = BufReader::new(stream);
    let (status, chunked, length) = read_head(&mut reader)?;
    if status != 200 {
        let mut text = String::new();
        let _ = reader.take(4096).read_to_string(&mut text);
        return Err(io::Error::other(format!(
            "{endpoint}{path}: HTTP {status}: {}",
            text.trim()
        )));
    }
    Ok(match (chunked, length) {
        (true, _) => Box::new(BufReader::new(Chunked {
            inner: reader,
            left: 0,
            done: false,
        })),
        (false, Some(length)) => Box::new(BufReader::new(reader.take(length))),
        (false, None) => Box::new(reader),
    })
}

/// TCP keepalive after [`KEEPALIVE_IDLE_S`]: a watch is quiet for hours,
/// and without probes an etcd that vanished without closing (power loss,
/// a partition) would leave it waiting forever rather than reconnecting.
/// A dead peer is found after about idle + count x interval = 25 s.
fn keep_alive(stream: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd as _;

    let fd = stream.as_raw_fd();
    let options = [
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, KEEPALIVE_IDLE_S),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, KEEPALIVE_INTERVAL_S),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, KEEPALIVE_COUNT),
    ];
    for (level, name, value) in options {
        let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `fd` is an open socket owned by `stream`, and `value`
        // is a c_int that lives across the call, whose size is passed.
        let rc = unsafe { libc::setsockopt(fd, level, name, (&raw const value).cast(), size) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Idle seconds before the first keepalive probe of a watch.
const KEEPALIVE_IDLE_S: libc::c_int = 10;
/// Seconds between keepalive probes.
const KEEPALIVE_INTERVAL_S: libc::c_int = 5;
/// Unanswered probes after which the connection is dropped.
const KEEPALIVE_COUNT: libc::c_int = 3;

/// Reads the status line and headers: status, chunked, content length.
fn read_head(reader: &mut impl BufRead) -> io::Result<(u16, bool, Option<u64>)> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("not an HTTP status line: {line:?}")))?;
    let (mut chunked, mut length, mut read) = (false, None, 0);
    loop {
        line.clear();
        read += reader.read_line(&mut line)?;
        if read > MAX_HEADER_BYTES {
            return Err(invalid("response headers too long".to_owned()));
        }
        let header = line.trim_end();
        if header.is_empty() {
            return Ok((status, chunked, length));
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok();
        }
    }
}

/// The body of a chunked response (RFC 9112, section 7.1), trailers
/// ignored.
struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            if self.inner.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let size = line.trim().split(';').next().unwrap_or_default();
            self.left = u64::from_str_radix(size, 16)
                .map_err(|_| invalid(format!("bad chunk size {size:?}")))?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        if self.left == 0 {
            // The CRLF that ends every chunk.
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
        }
        Ok(n)
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

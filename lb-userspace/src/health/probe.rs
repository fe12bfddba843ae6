//! One probe of one backend: a TCP connect, or an HTTP/1.1 GET on a fresh
//! connection (hyper's connection-level client: no pool, no redirects).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty};
use hyper::Request;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONNECTION, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::config::StatusCodes;

/// Most of a body read to look for `body_contains`, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What to probe, resolved from the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSpec {
    /// The backend's own address and the checked port (not the VIP).
    pub target: SocketAddr,
    /// How long the whole probe may take.
    pub timeout: Duration,
    /// TCP or HTTP.
    pub kind: ProbeKind,
}

/// The kind of probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// Healthy when a TCP connection is accepted.
    Tcp,
    /// Healthy when a GET of `path` answers with an expected status and,
    /// if asked, a body containing `body_contains`.
    Http {
        /// Request path, starting with `/`.
        path: String,
        /// Healthy status codes.
        expect_status: StatusCodes,
        /// Text the first [`BODY_LIMIT`] bytes of the body must contain.
        body_contains: Option<String>,
    },
}

/// How a probe ended: a bounded set, used as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProbeOutcome {
    /// Healthy.
    Ok,
    /// No complete answer within the timeout.
    Timeout,
    /// The connection was refused.
    Refused,
    /// The connection failed otherwise (unreachable, reset...).
    ConnectError,
    /// The HTTP exchange failed (malformed answer, closed early).
    HttpError,
    /// An HTTP status outside the expected codes.
    BadStatus,
    /// The body did not contain the expected text.
    BodyMismatch,
}

impl ProbeOutcome {
    /// snake_case name, as in metric labels.
    pub fn name(self) -> &'static str {
        match self {
            ProbeOutcome::Ok => "ok",
            ProbeOutcome::Timeout => "timeout",
            ProbeOutcome::Refused => "refused",
            ProbeOutcome::ConnectError => "connect_error",
            ProbeOutcome::HttpError => "http_error",
            ProbeOutcome::BadStatus => "bad_status",
            ProbeOutcome::BodyMismatch => "body_mismatch",
        }
    }
}

/// A failed probe: its outcome and a lowercase detail for logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeFailure {
    /// Never [`ProbeOutcome::Ok`].
    pub outcome: ProbeOutcome,
    /// What happened, as in "status 500 is not in 200-399".
    pub detail: String,
}

impl ProbeFailure {
    /// A failure with `outcome` and `detail`.
    pub fn new(outcome: ProbeOutcome, detail: impl Into<String>) -> Self {
        Self {
            outcome,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// Probes once, within `spec.timeout`.
///
/// # Errors
///
/// The [`ProbeFailure`] saying why the backend is unhealthy.
pub async fn probe(spec: &ProbeSpec) -> Result<(), ProbeFailure> {
    let attempt = async {
        let stream = connect(spec.target).await?;
        match &spec.kind {
            ProbeKind::Tcp => Ok(()),
            ProbeKind::Http {
                path,
                expect_status,
                body_contains,
            } => {
                let body = body_contains.as_deref();
                get(stream, spec.target, path, expect_status, body).await
            }
        }
    };
    let limit = spec.timeout;
    timeout(limit, attempt).await.unwrap_or_else(|_| {
        let detail = format!("no answer within {limit:?}");
        Err(ProbeFailure::new(ProbeOutcome::Timeout, detail))
    })
}

/// A TCP connection to `target`, its failure classified (refused or
/// otherwise). Also used by the load signal's scrapes.
pub(crate) async fn connect(target: SocketAddr) -> Result<TcpStream, ProbeFailure> {
    TcpStream::connect(target).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::ConnectionRefused {
            ProbeFailure::new(ProbeOutcome::Refused, "connection refused")
        } else {
            ProbeFailure::new(ProbeOutcome::ConnectError, format!("connect failed: {e}"))
        }
    })
}

/// One GET on `stream`, checked against the expected status and body.
async fn get(
    stream: TcpStream,
    target: SocketAddr,
    path: &str,
    expect_status: &StatusCodes,
    body_contains: Option<&str>,
) -> Result<(), ProbeFailure> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http_error)?;
    let request = Request::get(path)
        .header(HOST, target.to_string())
        .header(CONNECTION, "close")
        .header(USER_AGENT, "xlb-health-check")
        .body(Empty::<Bytes>::new())
        .map_err(|e| ProbeFailure::new(ProbeOutcome::HttpError, format!("bad request: {e}")))?;

    let exchange = async {
        let response = sender.send_request(request).await.map_err(http_error)?;
        let status = response.status().as_u16();
        if !expect_status.contains(status) {
            let detail = format!("status {status} is not in {expect_status}");
            return Err(ProbeFailure::new(ProbeOutcome::BadStatus, detail));
        }
        if let Some(text) = body_contains {
            let body = read_capped(response.into_body()).await?;
            if !contains(&body, text.as_bytes()) {
                let detail = format!("body does not contain {text:?}");
                return Err(ProbeFailure::new(ProbeOutcome::BodyMismatch, detail));
            }
        }
        Ok(())
    };

    // The connection future moves the bytes; the exchange waits on it. If
    // the connection ends first, what it delivered is still in the exchange.
    tokio::pin!(exchange);
    tokio::select! {
        result = &mut exchange => result,
        _ = connection => exchange.await,
    }
}

/// The body's first [`BODY_LIMIT`] bytes.
async fn read_capped(mut body: Incoming) -> Result<Vec<u8>, ProbeFailure> {
    let mut read = Vec::new();
    while read.len() < BODY_LIMIT {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame.map_err(http_error)?.into_data() {
            let room = BODY_LIMIT - read.len();
            read.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(read)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

fn http_error(error: hyper::Error) -> ProbeFailure {
    ProbeFailure::new(ProbeOutcome::HttpError, format!("http: {error}"))
}

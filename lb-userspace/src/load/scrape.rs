//! One read of a backend's metrics endpoint: an HTTP/1.1 GET on a fresh
//! connection (the health checker's connect, hyper's connection-level
//! client: no pool, no redirects), within a timeout, the body capped.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty};
use hyper::Request;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONNECTION, CONTENT_LENGTH, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use tokio::time::timeout;

/// Largest metrics body read, in bytes; a longer one is refused.
pub const SCRAPE_BODY_LIMIT: usize = 1024 * 1024;

/// How a scrape ended: a bounded set, used as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScrapeOutcome {
    /// A plausible reading.
    Ok,
    /// No complete answer within the timeout.
    Timeout,
    /// No connection (refused, unreachable).
    ConnectError,
    /// A failed exchange or a status other than 2xx.
    HttpError,
    /// The body is longer than [`SCRAPE_BODY_LIMIT`].
    TooLarge,
    /// The body is not exposition text.
    ParseError,
    /// The metric (with its labels) is not in the body.
    Missing,
    /// NaN, infinite, negative or enormous.
    Absurd,
}

impl ScrapeOutcome {
    /// Every outcome, in label order.
    pub const ALL: [ScrapeOutcome; 8] = [
        ScrapeOutcome::Ok,
        ScrapeOutcome::Timeout,
        ScrapeOutcome::ConnectError,
        ScrapeOutcome::HttpError,
        ScrapeOutcome::TooLarge,
        ScrapeOutcome::ParseError,
        ScrapeOutcome::Missing,
        ScrapeOutcome::Absurd,
    ];

    /// snake_case name, as in metric labels.
    pub fn name(self) -> &'static str {
        match self {
            ScrapeOutcome::Ok => "ok",
            ScrapeOutcome::Timeout => "timeout",
            ScrapeOutcome::ConnectError => "connect_error",
            ScrapeOutcome::HttpError => "http_error",
            ScrapeOutcome::TooLarge => "too_large",
            ScrapeOutcome::ParseError => "parse_error",
            ScrapeOutcome::Missing => "missing",
            ScrapeOutcome::Absurd => "absurd",
        }
    }
}

/// A failed scrape: its outcome and a lowercase detail for logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeFailure {
    /// Never [`ScrapeOutcome::Ok`].
    pub outcome: ScrapeOutcome,
    /// What happened, as in "status 500".
    pub detail: String,
}

impl ScrapeFailure {
    /// A failure with `outcome` and `detail`.
    pub fn new(outcome: ScrapeOutcome, detail: impl Into<String>) -> Self {
        Self {
            outcome,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for ScrapeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// GETs `path` from `target` within `limit` and returns the body.
///
/// # Errors
///
/// A [`ScrapeFailure`] for a timeout, a failed connection or exchange, a
/// status other than 2xx, or a body over [`SCRAPE_BODY_LIMIT`].
pub async fn fetch(
    target: SocketAddr,
    path: &str,
    limit: Duration,
) -> Result<Vec<u8>, ScrapeFailure> {
    let attempt = async {
        let stream = crate::health::connect(target)
            .await
            .map_err(|f| ScrapeFailure::new(ScrapeOutcome::ConnectError, f.detail))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http_error)?;
        // The connection moves the bytes while the exchange runs; it ends
        // with the exchange, since the request asks to close.
        let driver = tokio::spawn(connection);
        let request = Request::get(path)
            .header(HOST, target.to_string())
            .header(CONNECTION, "close")
            .header(USER_AGENT, "xlb-load-signal")
            .body(Empty::<Bytes>::new())
            .map_err(|e| ScrapeFailure::new(ScrapeOutcome::HttpError, format!("bad request: {e}")));
        let result = match request {
            Ok(request) => exchange(&mut sender, request).await,
            Err(failure) => Err(failure),
        };
        driver.abort();
        result
    };
    timeout(limit, attempt).await.unwrap_or_else(|_| {
        let detail = format!("no answer within {limit:?}");
        Err(ScrapeFailure::new(ScrapeOutcome::Timeout, detail))
    })
}

async fn exchange(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    request: Request<Empty<Bytes>>,
) -> Result<Vec<u8>, ScrapeFailure> {
    let response = sender.send_request(request).await.map_err(http_error)?;
    let status = response.status();
    if !status.is_success() {
        let detail = format!("status {}", status.as_u16());
        return Err(ScrapeFailure::new(ScrapeOutcome::HttpError, detail));
    }
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > SCRAPE_BODY_LIMIT as u64) {
        return Err(too_large());
    }
    read_capped(response.into_body()).await
}

/// The whole body, or [`ScrapeOutcome::TooLarge`] past the limit.
async fn read_capped(mut body: Incoming) -> Result<Vec<u8>, ScrapeFailure> {
    let mut read = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(http_error)?.into_data() {
            if read.len() + data.len() > SCRAPE_BODY_LIMIT {
                return Err(too_large());
            }
            read.extend_from_slice(&data);
        }
    }
    Ok(read)
}

fn too_large() -> ScrapeFailure {
    let detail = format!("body longer than {SCRAPE_BODY_LIMIT} bytes");
    ScrapeFailure::new(ScrapeOutcome::TooLarge, detail)
}

fn http_error(error: hyper::Error) -> ScrapeFailure {
    ScrapeFailure::new(ScrapeOutcome::HttpError, format!("http: {error}"))
}

//! xlbd's Prometheus endpoint: `GET /metrics` on `metrics_listen`
//! (loopback by default) answers OpenMetrics text computed at scrape time.
//! It is read-only: `HEAD` is answered like `GET` without the body, any
//! other method gets 405, and no path changes state.
//!
//! The server reads the pinned maps through its own handles, and the
//! daemon's state through a watch channel the daemon loop fills, so a
//! scrape never waits for a reload and a reload never waits for a scrape.
//! The map reads run on tokio's blocking pool: walking a large `FLOWS`
//! takes a while.

mod autoscale;
mod families;
mod policy;
mod signals;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, warn};

pub use families::{render, state_label};

use crate::daemon::DaemonStatus;
use crate::dataplane::{DataplaneError, Maps, PinDir};
use crate::health::HealthMetrics;
use crate::load::LoadMetrics;

/// What a scrape reads live, beside the status the daemon publishes on its
/// events: counters that move on every probe and scrape.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// The health checker's probe counts, durations and panic state.
    pub health: Arc<HealthMetrics>,
    /// The load tracker's scrapes, readings and factors.
    pub load: Arc<LoadMetrics>,
}

/// Content type of OpenMetrics text, which Prometheus scrapes natively.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The running endpoint; dropping it stops serving.
#[derive(Debug)]
pub struct MetricsServer {
    task: tokio::task::JoinHandle<()>,
    address: SocketAddr,
}

impl MetricsServer {
    /// Binds `address` and serves the maps pinned under `pins` with the
    /// state `status` carries. Needs a tokio runtime.
    ///
    /// # Errors
    ///
    /// When the pinned maps cannot be opened or the address cannot be bound.
    pub async fn start(
        address: SocketAddr,
        pins: &PinDir,
        status: watch::Receiver<DaemonStatus>,
        sources: Sources,
    ) -> anyhow::Result<Self> {
        let maps = Arc::new(Maps::open_pinned(pins)?);
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(serve(listener, maps, status, sources));
        Ok(Self { task, address })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    listener: TcpListener,
    maps: Arc<Maps>,
    status: watch::Receiver<DaemonStatus>,
    sources: Sources,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                warn!(%error, "metrics accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (maps, status, sources) = (maps.clone(), status.clone(), sources.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                answer(request, maps.clone(), status.clone(), sources.clone())
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                debug!(%error, "metrics connection ended");
            }
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    maps: Arc<Maps>,
    status: watch::Receiver<DaemonStatus>,
    sources: Sources,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // hyper sends no body in answer to HEAD, whatever the response holds.
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut refused = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "read-only; only GET and HEAD\n".into(),
        );
        refused
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(refused);
    }
    if request.uri().path() != "/metrics" {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found; try /metrics\n".into(),
        ));
    }
    let status = status.borrow().clone();
    let rendered = tokio::task::spawn_blocking(move || render(&status, &maps, &sources)).await;
    Ok(match rendered {
        Ok(Ok(text)) => reply(StatusCode::OK, OPENMETRICS, text),
        Ok(Err(error)) => failure(&error),
        Err(error) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("{error}\n"),
        ),
    })
}

fn failure(error: &DataplaneError) -> Response<Full<Bytes>> {
    warn!(%error, "metrics scrape failed");
    reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/plain",
        format!("{error}\n"),
    )
}

fn reply(code: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Starts the endpoint at the address `status` names, on the maps pinned
/// where it says; logs and returns `None` when it cannot (xlbd then serves
/// without metrics).
pub async fn start(
    status: &DaemonStatus,
    state: watch::Receiver<DaemonStatus>,
    sources: Sources,
) -> Option<MetricsServer> {
    let listen = status.metrics_listen.as_deref()?;
    let address: SocketAddr = match listen.parse() {
        Ok(address) => address,
        Err(error) => {
            warn!(%error, listen, "no metrics endpoint: bad address");
            return None;
        }
    };
    match MetricsServer::start(address, &PinDir::new(&status.pin_path), state, sources).await {
        Ok(server) => {
            tracing::info!(listen = %server.address(), "metrics endpoint listening");
            Some(server)
        }
        Err(error) => {
            warn!(error = format!("{error:#}"), listen, "no metrics endpoint");
            None
        }
    }
}

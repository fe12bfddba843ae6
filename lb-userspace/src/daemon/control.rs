//! The control socket: xlbctl's mutations reach the running xlbd here.
//!
//! A Unix stream socket (`control_socket` in the config, mode 0600, so
//! root only), one JSON [`Request`] per line in, one JSON [`Response`] per
//! line out. Connections are served by a task that hands each request to
//! the daemon's loop and waits for its answer, so requests are applied one
//! at a time, between reloads and health changes, never during one.

use std::io;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::config::BackendState;

/// Longest request line accepted, in bytes.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Most bytes read from one control connection: thousands of requests.
const MAX_CONNECTION_BYTES: u64 = 4 << 20;

/// What xlbctl asks of xlbd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Override a backend's state and/or weight.
    SetBackend {
        /// Backend address.
        backend: IpAddr,
        /// Pool; `None` means every pool that has the address.
        pool: Option<String>,
        /// New state, if changed.
        state: Option<BackendState>,
        /// New weight, if changed.
        weight: Option<u32>,
    },
    /// Drop a backend's override, back to the config.
    ResetBackend {
        /// Backend address.
        backend: IpAddr,
        /// Pool; `None` means every pool that has the address.
        pool: Option<String>,
    },
    /// Set (or with `None`, reset to the config's) the canary share of a
    /// VIP; kept across reloads.
    SplitVip {
        /// VIP name.
        vip: String,
        /// The share in basis points (1/10 000), or `None` to go back to
        /// the config's.
        canary_basis_points: Option<u16>,
    },
    /// Reload the config file.
    Reload,
    /// The autoscaled pools, answered in [`Response::autoscaler`].
    AutoscalerStatus,
    /// Take the data plane down (links and map pins removed), then exit.
    Detach,
}

/// xlbd's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// What was done, or why not.
    pub message: String,
    /// Map writes made.
    #[serde(default)]
    pub changes: usize,
    /// The autoscaled pools, for `AutoscalerStatus`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub autoscaler: Vec<crate::autoscale::AutoscaleRow>,
}

impl Response {
    /// A success.
    pub fn done(message: impl Into<String>, changes: usize) -> Self {
        Self {
            ok: true,
            message: message.into(),
            changes,
            autoscaler: Vec::new(),
        }
    }

    /// A refusal or failure.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            message: message.into(),
            changes: 0,
            autoscaler: Vec::new(),
        }
    }
}

/// Who sent a request: the peer's credentials from the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// User id.
    pub uid: u32,
    /// Process id, when the kernel reports one.
    pub pid: Option<i32>,
}

/// A request waiting for the daemon's loop.
#[derive(Debug)]
pub struct Incoming {
    /// The request.
    pub request: Request,
    /// Who sent it.
    pub peer: Peer,
    reply: oneshot::Sender<Response>,
}

impl Incoming {
    /// Sends the answer back to the client.
    pub fn reply(self, response: Response) {
        // The client may have gone; nothing to do then.
        let _ = self.reply.send(response);
    }
}

/// The listening socket; removes its file when dropped.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    requests: mpsc::Receiver<Incoming>,
    task: tokio::task::JoinHandle<()>,
}

impl ControlServer {
    /// Binds `path` with mode 0600 and starts accepting. A stale socket
    /// file is replaced; one another process listens on is not.
    ///
    /// # Errors
    ///
    /// When another daemon listens on `path`, or it cannot be bound.
    pub fn bind(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another process listens on {}", path.display()),
            ));
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        // Bind under a umask that leaves no window with looser permissions.
        // SAFETY: umask(2) only swaps the process's file mode mask.
        let old = unsafe { libc::umask(0o177) };
        let listener = UnixListener::bind(path);
        // SAFETY: as above, restoring the previous mask.
        unsafe { libc::umask(old) };
        let listener = listener?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;

        let (sender, requests) = mpsc::channel(16);
        let task = tokio::spawn(accept(listener, sender));
        Ok(Self {
            path: path.to_owned(),
            requests,
            task,
        })
    }

    /// The next request; pending forever once the accept task has ended.
    pub async fn next(&mut self) -> Incoming {
        match self.requests.recv().await {
            Some(incoming) => incoming,
            None => std::future::pending().await,
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Waits for the next request of an optional server (none: never).
pub async fn next_request(server: &mut Option<ControlServer>) -> Incoming {
    match server {
        Some(server) => server.next().await,
        None => std::future::pending().await,
    }
}

async fn accept(listener: UnixListener, sender: mpsc::Sender<Incoming>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, sender.clone()));
            }
            Err(error) => {
                warn!(%error, "control socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection: each line a request, each answer a line.
async fn serve(stream: UnixStream, sender: mpsc::Sender<Incoming>) {
    let peer = match stream.peer_cred() {
        Ok(cred) => Peer {
            uid: cred.uid(),
            pid: cred.pid(),
        },
        Err(error) => {
            warn!(%error, "control socket: no peer credentials; closing");
            return;
        }
    };
    let (read, mut write) = stream.into_split();
    // Bounds what one peer can make xlbd buffer, however long its lines.
    let read = tokio::io::AsyncReadExt::take(read, MAX_CONNECTION_BYTES);
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        // The socket is 0600 already; the check also holds where an operator
        // loosened the mode or the directory is shared. The request is read
        // first so the peer's write does not fail before it hears why.
        let refused = peer.uid != 0;
        let response = match serde_json::from_str::<Request>(&line) {
            _ if refused => {
                warn!(uid = peer.uid, pid = ?peer.pid, "control socket: peer is not root");
                Response::failed("permission denied: only root may steer xlbd")
            }
            _ if line.len() > MAX_REQUEST_BYTES => Response::failed("request too long"),
            Ok(request) => ask(&sender, request, peer).await,
            Err(error) => Response::failed(format!("bad request: {error}")),
        };
        let mut text = serde_json::to_string(&response).unwrap_or_default();
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() || refused {
            break;
        }
    }
    debug!(uid = peer.uid, "control connection closed");
}

async fn ask(sender: &mpsc::Sender<Incoming>, request: Request, peer: Peer) -> Response {
    let (reply, answer) = oneshot::channel();
    let incoming = Incoming {
        request,
        peer,
        reply,
    };
    if sender.send(incoming).await.is_err() {
        return Response::failed("xlbd is stopping");
    }
    answer
        .await
        .unwrap_or_else(|_| Response::failed("xlbd dropped the request"))
}

/// Starts the control socket named in `status`; logs and returns `None`
/// when it cannot (xlbd then serves without it).
pub fn start(status: &super::DaemonStatus) -> Option<ControlServer> {
    let path = status.control_socket.as_ref()?;
    match ControlServer::bind(path) {
        Ok(server) => {
            tracing::info!(socket = %path.display(), "control socket listening");
            Some(server)
        }
        Err(error) => {
            warn!(
                %error,
                socket = %path.display(),
                "no control socket; xlbctl cannot change state"
            );
            None
        }
    }
}

/// Gives connection tasks a moment to write their answers before the
/// daemon exits (the answer to `detach` is sent from another task).
pub async fn let_replies_out() {
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
}

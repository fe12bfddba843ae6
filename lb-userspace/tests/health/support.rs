//! Loopback backends for the health-check tests: TCP listeners that can be
//! closed and reopened on the same port, and tiny HTTP servers with canned
//! answers. Everything binds to 127.0.0.0/8, each test on its own address.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use xlb::config::Config;
use xlb::health::{HealthState, HealthView};

/// Longest any one test may run.
pub const TEST_LIMIT: Duration = Duration::from_secs(20);

/// Runs `test` and fails it when it outlasts [`TEST_LIMIT`].
pub async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the test ran longer than its time limit");
}

/// 127.0.0.`last`.
pub fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A config with one VIP (port 80) on pool `web`, and `pools` as written.
pub fn config(pools: &str) -> Config {
    let text = format!(
        "interfaces: [{{name: lo}}]\n\
         encap: {{source_v4: 10.255.0.1}}\n\
         vips: [{{name: web, address: 10.100.0.1, port: 80, protocol: tcp, pool: web}}]\n\
         pools:\n{pools}"
    );
    match Config::from_str(&text, "health.yaml") {
        Ok(loaded) => loaded.config,
        Err(err) => panic!("test config is invalid:\n{err}\n{text}"),
    }
}

/// A TCP listener bound with SO_REUSEADDR, accepting and dropping
/// connections until the handle is dropped or aborted.
pub struct Listener {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Listener {
    /// Listens on `ip` at `port` (0: any free port).
    pub fn open(ip: IpAddr, port: u16) -> Self {
        let listener = bind(SocketAddr::new(ip, port));
        let addr = listener.local_addr().expect("listener address");
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
        Self { addr, task }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Aborting drops the listening socket: new connects are refused.
        self.task.abort();
    }
}

/// An address nothing listens on: a port bound, then released.
pub fn closed_port(ip: IpAddr) -> SocketAddr {
    let listener = bind(SocketAddr::new(ip, 0));
    listener.local_addr().expect("listener address")
}

fn bind(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().expect("a TCP socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind(addr)
        .unwrap_or_else(|e| panic!("binding {addr}: {e}"));
    socket.listen(64).expect("listen")
}

/// What an HTTP test server does for a path.
#[derive(Clone)]
pub enum Answer {
    /// Writes this whole response, then closes.
    Raw(&'static str),
    /// Reads the request and never answers.
    Silence,
}

/// A tiny HTTP/1.1 server: one request per connection, answered by path
/// (unknown paths get 404). Records every path asked for.
pub struct HttpServer {
    pub addr: SocketAddr,
    pub paths: Arc<Mutex<Vec<String>>>,
    _listener: Listener,
}

impl HttpServer {
    /// Serves `answers` on `ip`, on a free port.
    pub fn start(ip: IpAddr, answers: &[(&'static str, Answer)]) -> Self {
        let listener = bind(SocketAddr::new(ip, 0));
        let addr = listener.local_addr().expect("listener address");
        let answers: Arc<HashMap<&str, Answer>> = Arc::new(answers.iter().cloned().collect());
        let paths = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&paths);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (answers, log) = (Arc::clone(&answers), Arc::clone(&log));
                tokio::spawn(async move {
                    let path = read_request_path(&mut stream).await;
                    log.lock().expect("path log").push(path.clone());
                    match answers.get(path.as_str()) {
                        Some(Answer::Raw(response)) => {
                            let _ = stream.write_all(response.as_bytes()).await;
                        }
                        Some(Answer::Silence) => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                        }
                        None => {
                            let _ = stream.write_all(NOT_FOUND.as_bytes()).await;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            paths,
            _listener: Listener { addr, task },
        }
    }
}

const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";

/// Reads a request head and returns its path.
async fn read_request_path(stream: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    head.split(' ').nth(1).unwrap_or("").to_owned()
}

/// Waits until `pool`/`addr` is in `state` in the view, and returns it.
pub async fn wait_for(
    views: &mut watch::Receiver<HealthView>,
    pool: &str,
    addr: IpAddr,
    state: HealthState,
) -> HealthView {
    loop {
        {
            let view = views.borrow_and_update();
            if view.get(pool, addr).is_some_and(|b| b.state == state) {
                return view.clone();
            }
        }
        views.changed().await.expect("the checker is alive");
    }
}

/// Polls `condition` every 10 ms until it holds.
pub async fn until(mut condition: impl FnMut() -> bool) {
    while !condition() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

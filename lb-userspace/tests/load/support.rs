//! Test HTTP servers on 127.0.0.0/8 for the load-signal tests: each
//! answers by a behaviour the test can change while it runs, including
//! misbehaviours (hang, trickle, endless body).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Longest any one test may run.
pub const TEST_LIMIT: Duration = Duration::from_secs(20);

/// What the test server answers.
#[derive(Clone)]
pub enum Answer {
    /// Status and body, with a content-length.
    Body(u16, Vec<u8>),
    /// 200 and this many bytes, without a length (ended by closing).
    Unsized(usize),
    /// Reads the request and never answers.
    Hang,
    /// Sends a head, then a byte every 50 ms, forever.
    Trickle,
}

/// An HTTP server on `ip` whose answer can be changed while it runs.
pub struct Server {
    pub addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(ip: IpAddr, answer: Answer) -> Self {
        let listener = TcpListener::bind((ip, 0))
            .await
            .expect("bind a test server");
        let addr = listener.local_addr().expect("its address");
        let answer = Arc::new(Mutex::new(answer));
        let shared = Arc::clone(&answer);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let answer = shared.lock().expect("answer").clone();
                tokio::spawn(serve(stream, answer));
            }
        });
        Self { addr, answer, task }
    }

    pub fn set(&self, answer: Answer) {
        *self.answer.lock().expect("answer") = answer;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, answer: Answer) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = match answer {
        Answer::Body(status, body) => {
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: text/plain; version=0.0.4\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            stream.write_all(&body).await
        }
        Answer::Unsized(len) => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
                .await;
            let chunk = vec![b'#'; 64 * 1024];
            let mut sent = 0;
            while sent < len {
                if stream.write_all(&chunk).await.is_err() {
                    break;
                }
                sent += chunk.len();
            }
            Ok(())
        }
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        }
        Answer::Trickle => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
                .await;
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if stream.write_all(b"#").await.is_err() {
                    break Ok(());
                }
            }
        }
    };
}

pub fn ok(text: &str) -> Answer {
    Answer::Body(200, text.as_bytes().to_vec())
}

/// Runs `test` and fails it when it outlasts [`TEST_LIMIT`].
pub async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the test ran longer than its time limit");
}

/// 127.0.0.`last`.
pub fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Polls until `condition` holds.
pub async fn until(mut condition: impl FnMut() -> bool) {
    while !condition() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Debian's node_exporter (package prometheus-node-exporter).
pub const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// A real node_exporter with only its CPU collector, on `ip` at a free
/// port; killed when dropped.
pub struct NodeExporter {
    pub addr: SocketAddr,
    child: std::process::Child,
}

impl NodeExporter {
    /// Starts it and waits until it accepts connections.
    pub async fn start(ip: IpAddr) -> Self {
        let port = {
            let probe = std::net::TcpListener::bind((ip, 0)).expect("a free port");
            probe.local_addr().expect("its address").port()
        };
        let addr = SocketAddr::new(ip, port);
        let child = std::process::Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address={addr}"))
            .args(["--collector.disable-defaults", "--collector.cpu"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{NODE_EXPORTER} does not start ({e}); `cargo xtask setup` installs it")
            });
        let exporter = Self { addr, child };
        until_async(|| async { TcpStream::connect(addr).await.is_ok() }).await;
        exporter
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn until_async<F: std::future::Future<Output = bool>>(mut condition: impl FnMut() -> F) {
    while !condition().await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

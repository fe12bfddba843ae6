//! A real etcd member for tests: Debian's etcd-server on ports the kernel
//! picks, a temp data directory, killed and removed on drop.

#![allow(dead_code, reason = "each test file uses a part")]

use std::fs;
use std::net::TcpListener;
use std::os::fd::AsRawFd as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xlb::etcd::EtcdClient;

/// How long a wait may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// One etcd member on `host` (loopback unless told), in `netns` if given.
pub struct Etcd {
    netns: Option<String>,
    host: String,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl Etcd {
    /// Starts a member on loopback, in `netns` if given.
    pub fn start(netns: Option<&str>) -> Self {
        Self::start_on(netns, "127.0.0.1")
    }

    /// Starts a member listening on `host`, in `netns` if given.
    pub fn start_on(netns: Option<&str>, host: &str) -> Self {
        let tag = format!("{}-{}", std::process::id(), free_port());
        let mut etcd = Etcd {
            netns: netns.map(str::to_owned),
            host: host.to_owned(),
            dir: std::env::temp_dir().join(format!("xlb-etcd-{tag}")),
            client_port: free_port(),
            peer_port: free_port(),
            child: None,
        };
        etcd.run();
        etcd
    }

    /// `host:port` of the client URL.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.client_port)
    }

    /// A client of this member.
    pub fn client(&self) -> EtcdClient {
        EtcdClient::new(&self.endpoint()).unwrap()
    }

    /// Starts (or restarts, on the same data) the member and waits until
    /// it answers.
    pub fn run(&mut self) {
        let client = format!("http://{}:{}", self.host, self.client_port);
        let peer = format!("http://{}:{}", self.host, self.peer_port);
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}")).arg("etcd");
                c
            }
            None => Command::new("etcd"),
        };
        command
            .arg("--name=xlb-test")
            .arg(format!("--data-dir={}", self.dir.display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=xlb-test={peer}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(
            command
                .spawn()
                .expect("starting etcd (is etcd-server installed?)"),
        );
        let client = self.client();
        let up = wait_for(|| in_netns(self.netns.as_deref(), || client.get("/ping").is_ok()));
        assert!(up, "etcd did not answer on {}", self.endpoint());
    }

    /// Kills the member; its data stays for [`Etcd::run`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A port free on loopback now (the kernel's pick, so tests running at
/// once do not collide).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    listener.local_addr().unwrap().port()
}

/// Runs `body` on a thread in network namespace `ns` (here if `None`).
pub fn in_netns<T: Send>(ns: Option<&str>, body: impl FnOnce() -> T + Send) -> T {
    let Some(ns) = ns else { return body() };
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| {
            let netns = fs::File::open(format!("/run/netns/{ns}")).expect("opening the netns");
            // SAFETY: setns(2) on a namespace fd only changes this thread.
            let rc = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            body()
        });
        thread.join().expect("the netns thread panicked")
    })
}

/// Polls `done` until it holds or [`TIMEOUT`] passes.
pub fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

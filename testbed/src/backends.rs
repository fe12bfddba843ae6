//! Backend servers (start, kill, readiness) and the decapsulation hook.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::plan;
use crate::process::Process;
use crate::testbed::Testbed;

/// How long a backend server may take to listen after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `xlbd decap` may take to attach and exit.
const DECAP_TIMEOUT: Duration = Duration::from_secs(30);

impl Testbed {
    /// Starts every backend's server, then waits until all listen.
    pub(crate) fn start_all_backends(&self) -> Result<()> {
        let started: Vec<usize> = (1..=self.backend_count())
            .map(|k| self.spawn_backend(k).map(|_| k))
            .collect::<Result<_>>()?;
        for k in started {
            self.wait_backend_ready(k)?;
        }
        Ok(())
    }

    /// Starts backend `k`'s server (`xlb-backend --name bK` in its
    /// namespace) and waits until it listens. Does nothing when it already
    /// runs.
    ///
    /// # Errors
    /// When there is no backend `k`, no xlb-backend binary, or the server
    /// does not listen within 5 s (the message carries its log).
    pub fn start_backend(&self, k: usize) -> Result<()> {
        if self.backend_process(k)?.is_some_and(|p| p.is_running()) {
            return Ok(());
        }
        self.spawn_backend(k)?;
        self.wait_backend_ready(k)
    }

    /// Kills backend `k`'s server with SIGKILL (a crash, not a graceful
    /// stop); its namespace and addresses stay.
    ///
    /// # Errors
    /// When there is no backend `k` or it cannot be reaped.
    pub fn kill_backend(&self, k: usize) -> Result<()> {
        self.backend_ns(k)?;
        let process = self.servers()[k - 1].take();
        if let Some(process) = process {
            process.kill()?;
            self.resources
                .processes()
                .retain(|p| p.pid() != process.pid());
            tracing::info!(backend = k, "backend server killed");
        }
        Ok(())
    }

    /// Backend `k`'s server process, if one was started and not killed.
    ///
    /// # Errors
    /// When there is no backend `k`.
    pub fn backend_process(&self, k: usize) -> Result<Option<Process>> {
        self.backend_ns(k)?;
        Ok(self.servers()[k - 1].clone())
    }

    fn spawn_backend(&self, k: usize) -> Result<Process> {
        let ns = self.backend_ns(k)?.to_owned();
        let Some(bin) = self.backend_bin.clone() else {
            bail!("no xlb-backend binary: the testbed was built with start_backends off");
        };
        let name = plan::backend_name(k);
        let process = self.spawn_labeled(&ns, &name, &bin, &["--name", &name])?;
        self.servers()[k - 1] = Some(process.clone());
        Ok(process)
    }

    /// Waits until backend `k` accepts on the last port it binds (it binds
    /// all its sockets before serving), connecting from its own namespace.
    fn wait_backend_ready(&self, k: usize) -> Result<()> {
        let ns = self.backend_ns(k)?;
        let process = self
            .backend_process(k)?
            .with_context(|| format!("backend b{k} has no server process"))?;
        let last_port = plan::HTTP_PORTS[plan::HTTP_PORTS.len() - 1];
        let target = plan::backend_socket_v4(k, last_port);
        let deadline = Instant::now() + READY_TIMEOUT;

        loop {
            if let Some(status) = process.exit_status() {
                bail!(
                    "backend b{k} exited ({status}) before listening; log {}:\n{}",
                    process.log_path().display(),
                    process.log_tail(20)
                );
            }
            if self.in_ns(ns, || probe(target))? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "backend b{k} is not listening on {target} after {READY_TIMEOUT:?}; log:\n{}",
                    process.log_tail(20)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Attaches the decapsulation XDP program on backend `k`'s eth0 by
    /// running `xlbd decap --iface eth0 --addr 10.0.0.(10+K) --addr
    /// fd00::(10+K) --pin-path PIN/decap-bK` in its namespace, and waits for
    /// it to finish. Runs only when called (or with
    /// `TestbedOptions::attach_decap`).
    ///
    /// # Errors
    /// When xlbd is not found, fails, or runs longer than 30 s; the message
    /// carries its log.
    pub fn attach_decap(&self, k: usize) -> Result<()> {
        let ns = self.backend_ns(k)?.to_owned();
        let xlbd = self.xlbd_path()?;
        let pin = self
            .pin_path()
            .join(format!("decap-{}", plan::backend_name(k)));
        let (v4, v6) = (
            plan::backend_v4(k).to_string(),
            plan::backend_v6(k).to_string(),
        );
        let pin = pin.to_string_lossy().into_owned();
        let args = [
            "decap",
            "--iface",
            "eth0",
            "--addr",
            &v4,
            "--addr",
            &v6,
            "--pin-path",
            &pin,
        ];

        let label = format!("decap-{}", plan::backend_name(k));
        let process = self.spawn_labeled(&ns, &label, &xlbd, &args)?;
        let Some(status) = process.wait_timeout(DECAP_TIMEOUT) else {
            process.kill()?;
            bail!(
                "xlbd decap on backend b{k} still ran after {DECAP_TIMEOUT:?}; log:\n{}",
                process.log_tail(20)
            );
        };
        if !status.success() {
            bail!(
                "xlbd decap on backend b{k} failed ({status}); log:\n{}",
                process.log_tail(20)
            );
        }
        tracing::info!(backend = k, pin = %pin, "decap attached");
        Ok(())
    }
}

/// Whether something accepts TCP connections at `target`.
fn probe(target: SocketAddr) -> bool {
    TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok()
}

//! The `Testbed`: one complete network built in fresh namespaces, torn down
//! when dropped.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::{Context, Result, bail};

use crate::bins;
use crate::names::{self, BPFFS_ROOT};
use crate::netns;
use crate::plan::{self, Node};
use crate::process::Process;
use crate::registry::{self, Resources};
use crate::topology::{self, Namespaces};

/// A hook run for every backend `k` once the network is up and the backend
/// servers run (for example to attach a decapsulation program).
pub type BackendSetup = Box<dyn Fn(&Testbed, usize) -> Result<()> + Send + Sync>;

/// How to build a testbed. `TestbedOptions::default()` gives two backends
/// with their servers running and nothing else attached.
pub struct TestbedOptions {
    /// Number of backends, 1..=`plan::MAX_BACKENDS`. Default 2.
    pub backends: usize,
    /// Start every backend's HTTP/UDP server during `Testbed::new`.
    /// Default true.
    pub start_backends: bool,
    /// The xlb-backend binary; default: located by `bins::locate`.
    pub backend_bin: Option<PathBuf>,
    /// The xlbd binary; default: located by `bins::locate` when needed.
    pub xlbd_bin: Option<PathBuf>,
    /// Run `attach_decap` for every backend during `Testbed::new`.
    /// Default false.
    pub attach_decap: bool,
    /// Extra per-backend setup run during `Testbed::new`, after decap.
    pub backend_setup: Option<BackendSetup>,
    /// Keep the log directory after teardown (also kept when tearing down
    /// during a panic, or when env `XLB_KEEP_LOGS` is set). Default false.
    pub keep_logs: bool,
    /// Install the Ctrl-C / SIGTERM handler that tears down live testbeds
    /// and exits 130. Default true.
    pub handle_ctrlc: bool,
    /// Remove leftovers of dead runs first (`cleanup_stale`). Default true.
    pub cleanup_stale: bool,
}

impl Default for TestbedOptions {
    fn default() -> Self {
        TestbedOptions {
            backends: 2,
            start_backends: true,
            backend_bin: None,
            xlbd_bin: None,
            attach_decap: false,
            backend_setup: None,
            keep_logs: std::env::var_os("XLB_KEEP_LOGS").is_some(),
            handle_ctrlc: true,
            cleanup_stale: true,
        }
    }
}

impl fmt::Debug for TestbedOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestbedOptions")
            .field("backends", &self.backends)
            .field("start_backends", &self.start_backends)
            .field("backend_bin", &self.backend_bin)
            .field("xlbd_bin", &self.xlbd_bin)
            .field("attach_decap", &self.attach_decap)
            .field("backend_setup", &self.backend_setup.is_some())
            .field("keep_logs", &self.keep_logs)
            .field("handle_ctrlc", &self.handle_ctrlc)
            .field("cleanup_stale", &self.cleanup_stale)
            .finish()
    }
}

/// A running testbed: client, router, LB node and backends in their own
/// namespaces (see `plan` for addresses). Dropping it stops its processes,
/// deletes its namespaces and removes its pin directory.
pub struct Testbed {
    pub(crate) resources: Arc<Resources>,
    pub(crate) ns: Namespaces,
    pub(crate) backend_bin: Option<PathBuf>,
    pub(crate) xlbd_bin: Option<PathBuf>,
    /// The running server of each backend (index 0 is backend 1).
    pub(crate) servers: Mutex<Vec<Option<Process>>>,
}

impl Testbed {
    /// Builds a testbed: namespaces, links, addresses, routes, then (by
    /// default) starts the backend servers and waits until they listen.
    ///
    /// # Errors
    /// When any step fails; what was already made is torn down.
    pub fn new(options: TestbedOptions) -> Result<Testbed> {
        if !(1..=plan::MAX_BACKENDS).contains(&options.backends) {
            bail!(
                "backend count {} is outside 1..={}",
                options.backends,
                plan::MAX_BACKENDS
            );
        }
        if options.cleanup_stale {
            registry::cleanup_stale()?;
        }
        let backend_bin = if options.start_backends {
            Some(bins::resolve(
                options.backend_bin.as_deref(),
                bins::BACKEND_BIN,
            )?)
        } else {
            options.backend_bin.clone()
        };

        let prefix = names::new_prefix();
        let ns = Namespaces::new(&prefix, options.backends);
        let log_dir = std::env::temp_dir().join(format!("xlb-testbed-{prefix}"));
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("create log dir {}", log_dir.display()))?;
        let resources = Arc::new(Resources::new(prefix, ns.all(), log_dir, options.keep_logs));
        registry::register(Arc::clone(&resources));
        if options.handle_ctrlc {
            registry::install_ctrlc_handler();
        }

        // From here on, dropping `testbed` on an error tears down the rest.
        let testbed = Testbed {
            resources,
            ns,
            backend_bin,
            xlbd_bin: options.xlbd_bin.clone(),
            servers: Mutex::new(vec![None; options.backends]),
        };
        bins::ensure_bpffs(Path::new(BPFFS_ROOT))?;
        let pin = testbed.pin_path();
        std::fs::create_dir_all(pin)
            .with_context(|| format!("create pin dir {}", pin.display()))?;
        topology::build(&testbed.ns, pin).context("build the testbed network")?;

        if options.start_backends {
            testbed.start_all_backends()?;
        }
        for k in 1..=options.backends {
            if options.attach_decap {
                testbed.attach_decap(k)?;
            }
            if let Some(setup) = &options.backend_setup {
                setup(&testbed, k).with_context(|| format!("set up backend b{k}"))?;
            }
        }
        tracing::info!(prefix = %testbed.prefix(), backends = options.backends, "testbed up");
        Ok(testbed)
    }

    /// The unique prefix of this testbed's names.
    pub fn prefix(&self) -> &str {
        &self.resources.prefix
    }

    /// All namespace names.
    pub fn namespaces(&self) -> &Namespaces {
        &self.ns
    }

    /// The switch namespace (bridge `br0`).
    pub fn switch_ns(&self) -> &str {
        &self.ns.switch
    }

    /// The client namespace.
    pub fn client_ns(&self) -> &str {
        &self.ns.client
    }

    /// The router namespace.
    pub fn router_ns(&self) -> &str {
        &self.ns.router
    }

    /// The LB namespace (xlbd attaches XDP to its eth0).
    pub fn lb_ns(&self) -> &str {
        &self.ns.lb
    }

    /// Backend `k`'s namespace (k from 1).
    ///
    /// # Errors
    /// When there is no backend `k`.
    pub fn backend_ns(&self, k: usize) -> Result<&str> {
        self.ns.of(Node::Backend(k)).with_context(|| {
            format!(
                "backend b{k} does not exist (testbed has {})",
                self.backend_count()
            )
        })
    }

    /// How many backends the testbed has.
    pub fn backend_count(&self) -> usize {
        self.ns.backends.len()
    }

    /// This testbed's bpffs directory, `/sys/fs/bpf/xlb-test-PREFIX`,
    /// removed (with every pin in it) at teardown.
    pub fn pin_path(&self) -> &Path {
        &self.resources.pin_dir
    }

    /// The directory holding spawned processes' logs.
    pub fn log_dir(&self) -> &Path {
        &self.resources.log_dir
    }

    /// The xlbd binary: the one given in the options, else located.
    ///
    /// # Errors
    /// When it cannot be found.
    pub fn xlbd_path(&self) -> Result<PathBuf> {
        bins::resolve(self.xlbd_bin.as_deref(), bins::XLBD_BIN)
    }

    /// Runs `args` (program first) in namespace `ns` and returns stdout.
    ///
    /// # Errors
    /// When it cannot start or exits with failure (see `netns::exec`).
    pub fn exec(&self, ns: &str, args: &[&str]) -> Result<String> {
        netns::exec(ns, args)
    }

    /// Runs `f` on a thread inside namespace `ns` (see `netns::in_ns`).
    ///
    /// # Errors
    /// When the namespace cannot be entered.
    pub fn in_ns<F, R>(&self, ns: &str, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        netns::in_ns(ns, f)
    }

    /// Starts `program` in namespace `ns`, logging to `LOG_DIR/NAME.log`
    /// (NAME is the program's file name); stopped at teardown.
    ///
    /// # Errors
    /// When it cannot start.
    pub fn spawn_in(&self, ns: &str, program: &Path, args: &[&str]) -> Result<Process> {
        let label = program
            .file_name()
            .map_or("process".into(), |n| n.to_string_lossy());
        self.spawn_labeled(ns, &label, program, args)
    }

    /// Like `spawn_in`, logging to `LOG_DIR/LABEL.log` (appended when a
    /// process with the same label ran before).
    ///
    /// # Errors
    /// When it cannot start.
    pub fn spawn_labeled(
        &self,
        ns: &str,
        label: &str,
        program: &Path,
        args: &[&str],
    ) -> Result<Process> {
        let log_path = self.log_dir().join(format!("{label}.log"));
        let process = Process::spawn(ns, program, args, label, log_path)?;
        tracing::debug!(process = %process.describe(), "spawned");
        self.resources.processes().push(process.clone());
        Ok(process)
    }

    /// Tears the testbed down now (Drop does the same; later calls do
    /// nothing).
    pub fn teardown(&self) {
        registry::release(&self.resources);
    }

    pub(crate) fn servers(&self) -> MutexGuard<'_, Vec<Option<Process>>> {
        self.servers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        registry::release(&self.resources);
    }
}

impl fmt::Debug for Testbed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Testbed")
            .field("prefix", &self.prefix())
            .field("namespaces", &self.ns)
            .field("pin_path", &self.pin_path())
            .finish_non_exhaustive()
    }
}

//! Client-side traffic from the client namespace, and a readable summary of
//! the testbed.

use std::fmt::Write as _;
use std::net::SocketAddr;

use anyhow::Result;

use crate::client::{self, KeepAliveConn, RequestStats};
use crate::plan::{self, Node, Port};
use crate::testbed::Testbed;

impl Testbed {
    /// GETs `/` from `target` (a VIP or any address) from the client
    /// namespace over a new TCP connection (no keep-alive) and returns the
    /// body, e.g. "backend b1\n".
    ///
    /// # Errors
    /// On connect failure, timeout (2 s), or a non-2xx status.
    pub fn http_get(&self, target: SocketAddr) -> Result<String> {
        self.in_ns(self.client_ns(), || {
            client::http_get_with(&client::agent(), target)
        })?
    }

    /// Sends one UDP datagram to `target` from the client namespace and
    /// returns the reply, e.g. "backend b1\n".
    ///
    /// # Errors
    /// On socket errors or no reply within 2 s.
    pub fn udp_query(&self, target: SocketAddr) -> Result<String> {
        self.in_ns(self.client_ns(), || {
            client::udp_query(target, b"xlb-testbed query")
        })?
    }

    /// Sends `n` GETs to `target` from the client namespace, one new
    /// connection each, one after another, calling `on_progress(done, n)`
    /// after each. Failed requests are counted, not returned as errors.
    ///
    /// # Errors
    /// Only when the client namespace cannot be entered.
    pub fn run_requests(
        &self,
        target: SocketAddr,
        n: usize,
        mut on_progress: impl FnMut(usize, usize) + Send,
    ) -> Result<RequestStats> {
        self.in_ns(self.client_ns(), || {
            let agent = client::agent();
            let mut stats = RequestStats::default();
            for done in 1..=n {
                match client::http_get_with(&agent, target) {
                    Ok(body) => stats.record_answer(&body),
                    Err(err) => stats.record_failure(&err),
                }
                on_progress(done, n);
            }
            stats
        })
    }

    /// Like `run_requests`, each connection from the client's address
    /// `source` (one of `plan::client_v4_in`).
    ///
    /// # Errors
    /// Only when the client namespace cannot be entered.
    pub fn run_requests_from(
        &self,
        source: std::net::IpAddr,
        target: SocketAddr,
        n: usize,
    ) -> Result<RequestStats> {
        self.in_ns(self.client_ns(), || {
            let mut stats = RequestStats::default();
            for _ in 0..n {
                match client::http_get_from(source, target) {
                    Ok(body) => stats.record_answer(&body),
                    Err(err) => stats.record_failure(&err),
                }
            }
            stats
        })
    }

    /// Opens a TCP connection from the client namespace to `target` for
    /// repeated keep-alive requests (`KeepAliveConn::get`).
    ///
    /// # Errors
    /// When the connection cannot be made within 2 s.
    pub fn keep_alive(&self, target: SocketAddr) -> Result<KeepAliveConn> {
        self.in_ns(self.client_ns(), || KeepAliveConn::connect(target))?
    }

    /// A few lines naming the namespaces and addresses, for people (xtask
    /// demo prints it).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let ns = self.namespaces();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "testbed {} (logs {})",
            self.prefix(),
            self.log_dir().display()
        );
        let _ = writeln!(
            out,
            "  client  {:<12} eth0 {} {}",
            ns.client,
            plan::CLIENT_V4,
            plan::CLIENT_V6
        );
        let _ = writeln!(
            out,
            "  router  {:<12} eth-cl {} {}, eth0 {} {}",
            ns.router,
            plan::ROUTER_CLIENT_SIDE_V4,
            plan::ROUTER_CLIENT_SIDE_V6,
            plan::ROUTER_V4,
            plan::ROUTER_V6
        );
        let _ = writeln!(
            out,
            "  lb      {:<12} eth0 {} {} mac {}",
            ns.lb,
            plan::LB_V4,
            plan::LB_V6,
            plan::mac(Node::Lb, Port::Eth0)
        );
        for k in 1..=self.backend_count() {
            let _ = writeln!(
                out,
                "  backend {:<12} eth0 {} {}, VIPs on lo, http :80 :8080, udp :{}",
                ns.backends[k - 1],
                plan::backend_v4(k),
                plan::backend_v6(k),
                plan::UDP_PORT
            );
        }
        let _ = writeln!(
            out,
            "  switch  {:<12} br0; XDP program xlb_pass on port `lb`: without it the \
             kernel drops the LB's XDP_TX frames on the veth",
            ns.switch
        );
        let _ = writeln!(
            out,
            "  router fills in TCP/UDP checksums (iptables CHECKSUM --checksum-fill), \
             as a NIC would; the client's veth leaves them partial"
        );
        let _ = writeln!(
            out,
            "  VIPs {} and {} routed by the router to the LB; pins under {}",
            plan::VIP_NET_V4,
            plan::VIP_NET_V6,
            self.pin_path().display()
        );
        out
    }
}

//! The config as the checker needs it: what to probe for each backend.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::config::{CheckKind, Config};

use super::policy::PoolMember;
use super::probe::{ProbeKind, ProbeSpec};

/// How one backend is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckPlan {
    /// What one probe does.
    pub probe: ProbeSpec,
    /// Time from the start of one probe to the start of the next.
    pub interval: Duration,
    /// Consecutive successes that bring a down backend up.
    pub rise: u32,
    /// Consecutive failures that take an up backend down.
    pub fall: u32,
}

/// Every configured backend by (pool, address), with its check: `None`
/// when its pool has no health check, or no port to check.
pub fn check_plans(config: &Config) -> BTreeMap<(String, IpAddr), Option<CheckPlan>> {
    let mut plans = BTreeMap::new();
    for (name, pool) in &config.pools {
        for backend in &pool.backends {
            let plan = pool.health_check.as_ref().and_then(|check| {
                let kind = match &check.kind {
                    CheckKind::Tcp => ProbeKind::Tcp,
                    CheckKind::Http {
                        path,
                        expect_status,
                        body_contains,
                    } => ProbeKind::Http {
                        path: path.clone(),
                        expect_status: expect_status.clone(),
                        body_contains: body_contains.clone(),
                    },
                };
                let probe = ProbeSpec {
                    target: SocketAddr::new(backend.address, check.port?),
                    timeout: check.timeout,
                    kind,
                };
                Some(CheckPlan {
                    probe,
                    interval: check.interval,
                    rise: check.rise,
                    fall: check.fall,
                })
            });
            plans.insert((name.clone(), backend.address), plan);
        }
    }
    plans
}

/// Every pool's backends as panic mode sees them.
pub fn pool_members(config: &Config) -> BTreeMap<String, Vec<PoolMember>> {
    let members = |(name, pool): (&String, &crate::config::PoolConfig)| {
        (
            name.clone(),
            pool.backends.iter().map(PoolMember::from).collect(),
        )
    };
    config.pools.iter().map(members).collect()
}

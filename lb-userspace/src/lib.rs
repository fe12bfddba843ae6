//! xlb's user side: config, Maglev tables, map access, shared by xlbd,
//! xlbctl, xtask and the tests.

pub mod announce;
pub mod autoscale;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dataplane;
pub mod decap;
pub mod etcd;
pub mod health;
pub mod load;
pub mod maglev;
pub mod metrics;
pub mod objects;
pub mod testrun;

//! etcd as a config source for a fleet: one key holds the whole YAML
//! config; every xlbd watches it (`xlbd run --etcd ... --etcd-key ...`)
//! and `xlbctl config push` validates a file and writes it there.

mod base64;
pub mod client;
mod http;
pub mod source;

pub use client::{EtcdClient, EtcdError, Got, WatchEvent};
pub use source::Update;

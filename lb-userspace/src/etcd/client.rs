//! A small etcd v3 client over the JSON gateway that every etcd serves on
//! its client port (`/v3/kv/range`, `/v3/kv/put`, `/v3/watch`): blocking,
//! plain HTTP, one key. Enough for a config source; no leases, no TLS.
//!
//! Limitation: no TLS or authentication, because the JSON gateway needs
//! neither on loopback or a private network and this keeps the client
//! small; an etcd that requires them needs a gRPC client (`etcd-client`).

use std::io::{self, BufRead};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::base64;
use super::http;

/// How long a range or put may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an etcd request failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint answered; the last one's error is the source.
    #[error("no etcd endpoint answered ({endpoints})")]
    Unreachable {
        /// The endpoints tried, comma-separated.
        endpoints: String,
        /// What the last one said.
        source: io::Error,
    },
    /// An endpoint answered with something this client cannot read.
    #[error("etcd answered {0}")]
    Answer(String),
}

/// Endpoints of one etcd cluster, tried in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdClient {
    endpoints: Vec<String>,
}

/// A key's value at a revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Got {
    /// The value, `None` when the key does not exist.
    pub value: Option<Vec<u8>>,
    /// The store's revision the answer is from.
    pub revision: i64,
}

/// One change a watch reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was written.
    Put {
        /// The new value.
        value: Vec<u8>,
        /// The revision of the write.
        revision: i64,
    },
    /// The key was deleted.
    Delete {
        /// The revision of the delete.
        revision: i64,
    },
    /// The start revision was compacted away: get the key again and watch
    /// from the revision of that answer.
    Compacted {
        /// The oldest revision still kept.
        compact_revision: i64,
    },
}

impl EtcdClient {
    /// Endpoints as `host:port` or `http://host:port`, comma-separated:
    /// `127.0.0.1:2379,10.0.0.2:2379`.
    ///
    /// # Errors
    ///
    /// When the list is empty or an endpoint asks for https.
    pub fn new(endpoints: &str) -> Result<Self, String> {
        let mut list = Vec::new();
        for endpoint in endpoints
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            if endpoint.starts_with("https://") {
                return Err(format!("{endpoint}: https is not supported"));
            }
            let bare = endpoint.trim_start_matches("http://").trim_end_matches('/');
            list.push(bare.to_owned());
        }
        if list.is_empty() {
            return Err("no etcd endpoint given".to_owned());
        }
        Ok(Self { endpoints: list })
    }

    /// Reads `key`.
    ///
    /// # Errors
    ///
    /// When no endpoint answers or the answer is malformed.
    pub fn get(&self, key: &str) -> Result<Got, EtcdError> {
        let body = json!({ "key": base64::encode(key.as_bytes()) });
        let answer: RangeResponse = self.call("/v3/kv/range", &body)?;
        let value = match answer.kvs.first() {
            Some(kv) => Some(decode(&kv.value)?),
            None => None,
        };
        Ok(Got {
            value,
            revision: number(&answer.header.revision)?,
        })
    }

    /// Writes `value` under `key`; returns the revision of the write.
    ///
    /// # Errors
    ///
    /// When no endpoint answers or the answer is malformed.
    pub fn put(&self, key: &str, value: &[u8]) -> Result<i64, EtcdError> {
        let body = json!({
            "key": base64::encode(key.as_bytes()),
            "value": base64::encode(value),
        });
        let answer: PutResponse = self.call("/v3/kv/put", &body)?;
        number(&answer.header.revision)
    }

    /// Compacts the store's history up to `revision` (operators and tests;
    /// etcd usually compacts on its own schedule).
    ///
    /// # Errors
    ///
    /// When no endpoint answers.
    pub fn compact(&self, revision: i64) -> Result<(), EtcdError> {
        let body = json!({ "revision": revision.to_string(), "physical": true });
        self.call::<serde_json::Value>("/v3/kv/compaction", &body)
            .map(drop)
    }

    /// Watches `key` from `start_revision` on.
    ///
    /// # Errors
    ///
    /// When no endpoint takes the watch.
    pub fn watch(&self, key: &str, start_revision: i64) -> Result<Watch, EtcdError> {
        let body = json!({ "create_request": {
            "key": base64::encode(key.as_bytes()),
            "start_revision": start_revision.to_string(),
        }});
        let reader = self.post("/v3/watch", &body, None)?;
        Ok(Watch {
            stream: serde_json::Deserializer::from_reader(reader).into_iter(),
        })
    }

    fn call<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, EtcdError> {
        let reader = self.post(path, body, Some(REQUEST_TIMEOUT))?;
        serde_json::from_reader(reader).map_err(|e| EtcdError::Answer(format!("{path}: {e}")))
    }

    fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
        timeout: Option<Duration>,
    ) -> Result<Box<dyn BufRead + Send>, EtcdError> {
        let bytes = body.to_string().into_bytes();
        let mut last = io::Error::other("no endpoint");
        for endpoint in &self.endpoints {
            match http::post(endpoint, path, &bytes, timeout) {
                Ok(reader) => return Ok(reader),
                Err(e) => last = e,
            }
        }
        Err(EtcdError::Unreachable {
            endpoints: self.endpoints.join(","),
            source: last,
        })
    }
}

/// A running watch on one key.
pub struct Watch {
    stream: serde_json::StreamDeserializer<
        'static,
        serde_json::de::IoRead<Box<dyn BufRead + Send>>,
        WatchMessage,
    >,
}

impl Watch {
    /// Blocks until the next changes and returns them (in order).
    ///
    /// # Errors
    ///
    /// When the stream ends or breaks (etcd stopped, the connection was
    /// cut) or carries an error.
    pub fn changes(&mut self) -> Result<Vec<WatchEvent>, EtcdError> {
        loop {
            let message = match self.stream.next() {
                Some(Ok(message)) => message,
                Some(Err(e)) => return Err(EtcdError::Answer(format!("/v3/watch: {e}"))),
                None => return Err(EtcdError::Answer("/v3/watch: the stream ended".to_owned())),
            };
            if let Some(error) = message.error {
                return Err(EtcdError::Answer(format!("/v3/watch: {error}")));
            }
            let Some(result) = message.result else {
                continue;
            };
            let compacted = number(&result.compact_revision)?;
            if compacted > 0 {
                return Ok(vec![WatchEvent::Compacted {
                    compact_revision: compacted,
                }]);
            }
            if result.canceled {
                let reason = result.cancel_reason.unwrap_or_default();
                return Err(EtcdError::Answer(format!("/v3/watch: canceled: {reason}")));
            }
            let mut events = Vec::with_capacity(result.events.len());
            for event in result.events {
                let revision = number(&event.kv.mod_revision)?;
                events.push(match event.kind.as_deref() {
                    Some("DELETE") => WatchEvent::Delete { revision },
                    _ => WatchEvent::Put {
                        value: decode(&event.kv.value)?,
                        revision,
                    },
                });
            }
            if !events.is_empty() {
                return Ok(events);
            }
        }
    }
}

// The gateway's JSON: int64s are strings, bytes are base64, and fields at
// their default value are left out.

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    revision: String,
}

#[derive(Deserialize)]
struct RangeResponse {
    header: Header,
    #[serde(default)]
    kvs: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct PutResponse {
    header: Header,
}

#[derive(Deserialize)]
struct KeyValue {
    #[serde(default)]
    value: String,
    #[serde(default)]
    mod_revision: String,
}

#[derive(Deserialize)]
struct WatchMessage {
    result: Option<WatchResult>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct WatchResult {
    #[serde(default)]
    events: Vec<Event>,
    #[serde(default)]
    compact_revision: String,
    #[serde(default)]
    canceled: bool,
    cancel_reason: Option<String>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: Option<String>,
    kv: KeyValue,
}

fn number(text: &str) -> Result<i64, EtcdError> {
    if text.is_empty() {
        return Ok(0);
    }
    text.parse()
        .map_err(|_| EtcdError::Answer(format!("{text:?} where a revision was expected")))
}

fn decode(text: &str) -> Result<Vec<u8>, EtcdError> {
    base64::decode(text).ok_or_else(|| EtcdError::Answer(format!("bad base64 {text:?}")))
}

//! Reading one signal out of Prometheus exposition text.
//!
//! Parsing is prometheus-parse's. Its name pattern is `\w+`, which has no
//! colon, so it silently drops lines of recording-rule style names such as
//! vLLM's `vllm:kv_cache_usage_perc`. Before parsing, a colon in a metric
//! name (of a sample, `# HELP` or `# TYPE` line) is therefore rewritten to
//! [`COLON`], and the configured name is rewritten the same way to match.
//! Label values are left as they are.
//!
//! Limitation: prometheus-parse splits labels on `,` and `=`, so a sample
//! whose label values contain those characters has those labels garbled;
//! matching on such a label fails (the reading counts as missing).

use std::collections::BTreeMap;

use prometheus_parse::{Scrape, Value};

/// What a colon in a metric name becomes for the parser: word characters
/// only, and no exporter writes it.
const COLON: &str = "__xlb_colon__";

/// Why a body gave no reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpositionError {
    /// Not text, or no line parsed as a sample.
    Malformed(String),
    /// The text parsed, but no sample matched the metric and labels.
    Missing,
}

/// Which samples count: a metric name and label conditions (`value` must
/// be equal, `!value` must differ or be absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    /// The metric name as exposed, colons included.
    pub metric: String,
    /// Label conditions.
    pub labels: BTreeMap<String, String>,
}

impl Selector {
    fn matches(&self, labels: &prometheus_parse::Labels) -> bool {
        self.labels.iter().all(|(name, wanted)| {
            let actual = labels.get(name);
            match wanted.strip_prefix('!') {
                Some(excluded) => actual != Some(excluded),
                None => actual == Some(wanted.as_str()),
            }
        })
    }
}

/// The values of the samples `selector` picks from `body`, in file order.
///
/// # Errors
///
/// [`ExpositionError::Malformed`] when the body is not UTF-8 or holds no
/// sample at all; [`ExpositionError::Missing`] when none matches.
pub fn select(body: &[u8], selector: &Selector) -> Result<Vec<f64>, ExpositionError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ExpositionError::Malformed(format!("body is not utf-8: {e}")))?;
    let lines = text.lines().map(|line| Ok(encode_line(line)));
    let scrape = Scrape::parse(lines)
        .map_err(|e| ExpositionError::Malformed(format!("unreadable exposition: {e}")))?;
    if scrape.samples.is_empty() {
        let message = "no line reads as a prometheus sample".to_owned();
        return Err(ExpositionError::Malformed(message));
    }

    let name = selector.metric.replace(':', COLON);
    let values: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == name && selector.matches(&sample.labels))
        .filter_map(|sample| match sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
            Value::Histogram(_) | Value::Summary(_) => None,
        })
        .collect();
    if values.is_empty() {
        return Err(ExpositionError::Missing);
    }
    Ok(values)
}

/// `line` with the colons of its metric name rewritten to [`COLON`].
fn encode_line(line: &str) -> String {
    let trimmed = line.trim_start();
    if let Some(rest) = trimmed.strip_prefix('#') {
        let mut words = rest.split_whitespace();
        return match (words.next(), words.next()) {
            (Some(kind @ ("HELP" | "TYPE")), Some(name)) if name.contains(':') => {
                let tail: Vec<&str> = words.collect();
                format!("# {kind} {} {}", name.replace(':', COLON), tail.join(" "))
            }
            _ => line.to_owned(),
        };
    }
    let end = trimmed
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(trimmed.len());
    let (name, rest) = trimmed.split_at(end);
    if !name.contains(':') {
        return line.to_owned();
    }
    format!("{}{rest}", name.replace(':', COLON))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(metric: &str, labels: &[(&str, &str)]) -> Selector {
        Selector {
            metric: metric.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    const VLLM: &str = "# HELP vllm:kv_cache_usage_perc KV-cache usage. \
        1 means 100 percent usage.\n\
        # TYPE vllm:kv_cache_usage_perc gauge\n\
        vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"llama\"} 0.42\n\
        # HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n\
        # TYPE vllm:num_requests_waiting gauge\n\
        vllm:num_requests_waiting{engine=\"0\",model_name=\"llama\"} 7.0\n";

    #[test]
    fn metric_names_with_colons_are_kept() {
        let kv = select(VLLM.as_bytes(), &selector("vllm:kv_cache_usage_perc", &[]));
        assert_eq!(kv, Ok(vec![0.42]));
        let waiting = select(VLLM.as_bytes(), &selector("vllm:num_requests_waiting", &[]));
        assert_eq!(waiting, Ok(vec![7.0]));
    }

    #[test]
    fn labels_select_and_exclude_samples() {
        let body = "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 10\n\
                    node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 3\n\
                    node_cpu_seconds_total{cpu=\"1\",mode=\"system\"} 2\n";
        let busy = selector("node_cpu_seconds_total", &[("mode", "!idle")]);
        assert_eq!(select(body.as_bytes(), &busy), Ok(vec![3.0, 2.0]));
        let cpu1 = selector("node_cpu_seconds_total", &[("cpu", "1")]);
        assert_eq!(select(body.as_bytes(), &cpu1), Ok(vec![2.0]));
    }

    #[test]
    fn garbage_and_non_utf8_are_malformed_and_absent_metrics_missing() {
        let gpu = selector("DCGM_FI_DEV_GPU_UTIL", &[]);
        let garbage = select(b"<html>oops</html>", &gpu);
        assert!(
            matches!(garbage, Err(ExpositionError::Malformed(_))),
            "{garbage:?}"
        );
        let binary = select(&[0xff, 0xfe, 0x00, 0x41], &gpu);
        assert!(
            matches!(binary, Err(ExpositionError::Malformed(_))),
            "{binary:?}"
        );
        assert_eq!(select(VLLM.as_bytes(), &gpu), Err(ExpositionError::Missing));
    }

    #[test]
    fn nan_values_are_read_for_the_caller_to_reject() {
        let values = select(
            b"DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} NaN\n",
            &selector("DCGM_FI_DEV_GPU_UTIL", &[]),
        );
        assert!(values.is_ok_and(|v| v.len() == 1 && v[0].is_nan()));
    }
}

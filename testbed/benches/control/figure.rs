//! One control-plane figure, as `xlb-bench` reads it back.

use serde::Serialize;

/// A figure with its unit and a few words of method.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// What is measured.
    pub figure: String,
    /// The value, in `unit`.
    pub value: f64,
    /// Unit of `value`.
    pub unit: String,
    /// How it was measured, in a few words.
    pub method: String,
}

impl Figure {
    /// A figure from its parts.
    pub fn new(figure: &str, value: f64, unit: &str, method: String) -> Self {
        Self {
            figure: figure.into(),
            value,
            unit: unit.into(),
            method,
        }
    }
}

/// Median of `values` (0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

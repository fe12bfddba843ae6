//! A forecast of a pool's new-connection rate from its own history:
//! additive Holt-Winters (level, damped trend, one seasonal cycle, daily by
//! default) over fixed buckets, updated online.
//!
//! Why not a crate: augurs-mstl 0.10.3 (with augurs-ets) builds on rustc
//! 1.95 and forecasts well, but it refits the whole history at every
//! forecast, needs two full seasons before its first one, and adds 24
//! crates to the workspace (nalgebra, simba, stlrs, lstsq...) for what is
//! a three-line recurrence here, updated in O(1) per bucket with memory
//! fixed by the season. The forecast only ever raises a decision (see
//! `engine`), so a simple, inspectable model is the safer one.

use std::time::{Duration, Instant};

use crate::config::Predictive;

/// Smoothing of the level, per bucket.
const ALPHA: f64 = 0.3;
/// Smoothing of the trend, per bucket.
const BETA: f64 = 0.05;
/// Smoothing of the seasonal terms, per season.
const GAMMA: f64 = 0.3;
/// Damping of the trend per bucket ahead, so a trend is not carried
/// linearly across the horizon.
const PHI: f64 = 0.9;

/// The forecaster of one pool.
#[derive(Clone, Debug)]
pub struct Forecaster {
    bucket: Duration,
    horizon_buckets: u64,
    start: Instant,
    // The open bucket: (index, sum of rates, samples).
    open: Option<(u64, f64, u32)>,
    // The model after the last closed bucket, or the first season's means
    // while it fills.
    model: Model,
}

#[derive(Clone, Debug)]
enum Model {
    /// The first season: bucket means by index (`None`: no sample).
    Warming(Vec<Option<f64>>),
    /// A full season seen.
    Ready {
        level: f64,
        trend: f64,
        seasonal: Vec<f64>,
        last: u64,
    },
}

impl Forecaster {
    /// A forecaster for `predictive`, whose buckets start at `start`.
    pub fn new(predictive: &Predictive, start: Instant) -> Self {
        let bucket_ns = predictive.bucket.as_nanos().max(1);
        let season = usize::try_from(predictive.season.as_nanos() / bucket_ns).unwrap_or(2);
        let horizon_buckets = predictive.horizon.as_nanos().div_ceil(bucket_ns);
        Self {
            bucket: predictive.bucket,
            horizon_buckets: u64::try_from(horizon_buckets).unwrap_or(1).max(1),
            start,
            open: None,
            model: Model::Warming(vec![None; season.max(2)]),
        }
    }

    /// Takes the rate seen at `now`, in connections per second.
    pub fn observe(&mut self, now: Instant, rate: f64) {
        if !rate.is_finite() || rate < 0.0 {
            return;
        }
        let index = self.index(now);
        match &mut self.open {
            Some((open, sum, count)) if *open == index => {
                *sum += rate;
                *count += 1;
            }
            _ => {
                if let Some((open, sum, count)) = self.open.take() {
                    self.close(open, sum / f64::from(count.max(1)));
                }
                self.open = Some((index, rate, 1));
            }
        }
    }

    /// The highest rate forecast over the horizon from the last closed
    /// bucket; `None` until a full season has been seen.
    pub fn forecast(&self) -> Option<f64> {
        let Model::Ready {
            level,
            trend,
            seasonal,
            last,
        } = &self.model
        else {
            return None;
        };
        let season = seasonal.len() as u64;
        let mut damped = 0.0;
        let mut factor = 1.0;
        let mut highest: f64 = 0.0;
        for step in 1..=self.horizon_buckets {
            factor *= PHI;
            damped += factor;
            let index = usize::try_from((last + step) % season).unwrap_or(0);
            let value = level + damped * trend + seasonal[index];
            highest = highest.max(value);
        }
        Some(highest)
    }

    /// Whether a full season has been seen, so [`Forecaster::forecast`]
    /// answers.
    pub fn ready(&self) -> bool {
        matches!(self.model, Model::Ready { .. })
    }

    fn index(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        u64::try_from(elapsed / self.bucket.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    /// Folds the mean `y` of bucket `index` into the model.
    fn close(&mut self, index: u64, y: f64) {
        match &mut self.model {
            Model::Warming(means) => {
                let season = means.len() as u64;
                if index < season {
                    means[usize::try_from(index).unwrap_or(0)] = Some(y);
                    return;
                }
                let model = seed(means, index, y);
                self.model = model;
            }
            Model::Ready {
                level,
                trend,
                seasonal,
                last,
            } => {
                // Buckets without samples: carry the level along the trend
                // (damped away within a season, so no more steps than that).
                let season = seasonal.len();
                for _ in (last.saturating_add(1)..index).take(season) {
                    *level += PHI * *trend;
                    *trend *= PHI;
                }
                update((level, trend, seasonal), index, y);
                *last = index;
            }
        }
    }
}

/// The model after the first season: the level is the season's mean, the
/// seasonal terms each bucket's offset from it (0 where no sample came),
/// then bucket `index` with mean `y` is folded in.
fn seed(means: &[Option<f64>], index: u64, y: f64) -> Model {
    let seen: Vec<f64> = means.iter().flatten().copied().collect();
    let mean = if seen.is_empty() {
        y
    } else {
        seen.iter().sum::<f64>() / seen.len() as f64
    };
    let mut seasonal: Vec<f64> = means.iter().map(|m| m.map_or(0.0, |m| m - mean)).collect();
    let (mut level, mut trend) = (mean, 0.0);
    update((&mut level, &mut trend, &mut seasonal), index, y);
    Model::Ready {
        level,
        trend,
        seasonal,
        last: index,
    }
}

/// One Holt-Winters step: bucket `index` had mean `y`.
fn update((level, trend, seasonal): (&mut f64, &mut f64, &mut [f64]), index: u64, y: f64) {
    let slot = usize::try_from(index % seasonal.len() as u64).unwrap_or(0);
    let previous = *level;
    *level = ALPHA * (y - seasonal[slot]) + (1.0 - ALPHA) * (previous + PHI * *trend);
    *trend = BETA * (*level - previous) + (1.0 - BETA) * PHI * *trend;
    seasonal[slot] = GAMMA * (y - *level) + (1.0 - GAMMA) * seasonal[slot];
}

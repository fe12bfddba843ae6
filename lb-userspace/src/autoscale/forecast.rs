//! A forecast of a pool's new-connection rate from its own history: the
//! rate is averaged into fixed buckets, and the buckets of the last few
//! seasons (a day by default) are decomposed by MSTL (augurs), its trend
//! extrapolated by an automatically chosen exponential-smoothing model.
//!
//! A fit runs at most once per closed bucket (5 minutes by default), when
//! the engine asks, on at most `KEPT_SEASONS` seasons of buckets.
//! Limitation: the fit runs on the daemon's loop; at the largest setting
//! (1000 buckets a season, so 3000 points) it takes about a tenth of a
//! second once per bucket. Running it on tokio's blocking pool would take
//! it off the loop.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use augurs_core::{Fit, Predict};
use augurs_ets::AutoETS;
use augurs_mstl::MSTLModel;
use tracing::debug;

use crate::config::Predictive;

/// Seasons of buckets kept for fitting. MSTL needs two to see a season.
const KEPT_SEASONS: usize = 3;
/// Seasons needed before the first forecast.
const NEEDED_SEASONS: usize = 2;

/// The forecaster of one pool.
#[derive(Clone, Debug)]
pub struct Forecaster {
    bucket: Duration,
    season: usize,
    horizon_buckets: usize,
    start: Instant,
    // The open bucket: (index, sum of rates, samples).
    open: Option<(u64, f64, u32)>,
    // Closed buckets, oldest first, without gaps (a bucket with no sample
    // repeats the one before it).
    history: VecDeque<f64>,
    // The index of the last closed bucket.
    last: Option<u64>,
    // The forecast made after bucket `.0` closed.
    cached: RefCell<Option<(u64, Option<f64>)>>,
}

impl Forecaster {
    /// A forecaster for `predictive`, whose buckets start at `start`.
    pub fn new(predictive: &Predictive, start: Instant) -> Self {
        let bucket_ns = predictive.bucket.as_nanos().max(1);
        let season = usize::try_from(predictive.season.as_nanos() / bucket_ns).unwrap_or(2);
        let horizon = predictive.horizon.as_nanos().div_ceil(bucket_ns);
        Self {
            bucket: predictive.bucket,
            season: season.max(2),
            horizon_buckets: usize::try_from(horizon).unwrap_or(1).max(1),
            start,
            open: None,
            history: VecDeque::new(),
            last: None,
            cached: RefCell::new(None),
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

    /// The highest rate forecast over the horizon after the last closed
    /// bucket; `None` until two seasons have been seen, or when the model
    /// cannot be fitted.
    pub fn forecast(&self) -> Option<f64> {
        let last = self.last?;
        if !self.ready() {
            return None;
        }
        if let Some((at, forecast)) = *self.cached.borrow()
            && at == last
        {
            return forecast;
        }
        let forecast = self.fit();
        *self.cached.borrow_mut() = Some((last, forecast));
        forecast
    }

    /// Whether enough history has been seen for [`Forecaster::forecast`].
    pub fn ready(&self) -> bool {
        self.history.len() > NEEDED_SEASONS * self.season
    }

    fn fit(&self) -> Option<f64> {
        let y: Vec<f64> = self.history.iter().copied().collect();
        let trend = AutoETS::non_seasonal().into_trend_model();
        let model = MSTLModel::new(vec![self.season], trend);
        let predicted = model
            .fit(&y)
            .and_then(|fitted| fitted.predict(self.horizon_buckets, None));
        match predicted {
            Ok(forecast) => forecast
                .point
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .reduce(f64::max)
                .map(|v| v.max(0.0)),
            Err(error) => {
                debug!(%error, "no forecast: the model could not be fitted");
                None
            }
        }
    }

    fn index(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        u64::try_from(elapsed / self.bucket.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    /// Appends the mean `y` of bucket `index`, repeating the last bucket
    /// over the buckets that had no sample (at most a season of them).
    fn close(&mut self, index: u64, y: f64) {
        if let (Some(last), Some(&previous)) = (self.last, self.history.back()) {
            let missing = index.saturating_sub(last + 1).min(self.season as u64);
            for _ in 0..missing {
                self.history.push_back(previous);
            }
        }
        self.history.push_back(y);
        self.last = Some(index);
        while self.history.len() > KEPT_SEASONS * self.season {
            self.history.pop_front();
        }
    }
}

//! Validation of `limits`: how many VIPs and backend slots the maps are
//! sized for when xlbd starts (see `crate::dataplane::Limits`).

use lb_common::{MAX_BACKENDS, MAX_VIPS};

use super::raw::{At, RawLimits};
use super::validate::Checker;
use crate::dataplane::Limits;

/// Validates the `limits` block; the defaults when it is absent.
pub(super) fn limits(check: &mut Checker, raw: Option<&At<RawLimits>>) -> Limits {
    let mut limits = Limits::default();
    let Some(raw) = raw else {
        return limits;
    };
    let fields = [
        (&raw.value.vips, "limits.vips", MAX_VIPS, &mut limits.vips),
        (
            &raw.value.backends,
            "limits.backends",
            MAX_BACKENDS,
            &mut limits.backends,
        ),
    ];
    for (value, field, max, out) in fields {
        let Some(value) = value else {
            continue;
        };
        if !(1..=max).contains(&value.value) {
            let message = format!("{} is outside 1..={max}", value.value);
            check.error(value.referenced, field, message);
        }
        *out = value.value;
    }
    limits
}

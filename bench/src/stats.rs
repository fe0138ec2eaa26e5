//! Percentiles over a handful of samples (nearest-rank): the tables show p50/p95/p99 and the
//! plots show every sample, so no smoothing or interpolation is hidden in between.

use std::time::Duration;

/// Milliseconds of a duration.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile (p in 0..=100); NaN for no samples.
pub fn pct(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

pub fn median(samples: &[f64]) -> f64 {
    pct(samples, 50.0)
}

/// True when there is at least one sample and every one is finite and positive.
pub fn all_positive(samples: &[f64]) -> bool {
    !samples.is_empty() && samples.iter().all(|v| v.is_finite() && *v > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(pct(&s, 50.0), 3.0);
        assert_eq!(pct(&s, 95.0), 5.0);
        assert_eq!(pct(&s, 0.0), 1.0);
        assert!(pct(&[], 50.0).is_nan());
    }

    #[test]
    fn positivity() {
        assert!(all_positive(&[1.0, 2.0]));
        assert!(!all_positive(&[]));
        assert!(!all_positive(&[1.0, 0.0]));
        assert!(!all_positive(&[f64::NAN]));
    }
}

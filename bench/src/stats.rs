//! Percentiles over a handful of samples (nearest-rank), and the table rows we print.

use std::time::Duration;

#[derive(Default, Clone)]
pub struct Samples(Vec<f64>);

impl Samples {
    pub fn push_ms(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1000.0);
    }
    pub fn push(&mut self, v: f64) {
        self.0.push(v);
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Nearest-rank percentile (p in 0..=100).
    pub fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
        v[rank.min(v.len()) - 1]
    }
    pub fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NAN, f64::max)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nearest_rank() {
        let mut s = super::Samples::default();
        for v in [5.0, 1.0, 3.0, 2.0, 4.0] {
            s.push(v);
        }
        assert_eq!(s.pct(50.0), 3.0);
        assert_eq!(s.pct(95.0), 5.0);
        assert_eq!(s.pct(0.0), 1.0);
        assert_eq!(s.max(), 5.0);
    }
}

//! A per-second budget (a token bucket refilled continuously), with the
//! kept ratio of the current and previous second as its effective rate
//! (`_dd.limit_psr`): the limiter of rule-kept traces and of each
//! single-span rule.

use std::time::{Duration, Instant};

pub(crate) struct RateLimiter {
    per_second: f64,
    tokens: f64,
    last: Option<Instant>,
    window_start: Option<Instant>,
    allowed: [u64; 2],
    seen: [u64; 2],
}

impl RateLimiter {
    pub(crate) fn new(per_second: f64) -> RateLimiter {
        RateLimiter {
            per_second,
            tokens: per_second,
            last: None,
            window_start: None,
            allowed: [0; 2],
            seen: [0; 2],
        }
    }

    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        let window_start = *self.window_start.get_or_insert(now);
        let elapsed_windows = now.duration_since(window_start).as_secs();
        if elapsed_windows >= 1 {
            // Keep the previous second only if it is the one just before now.
            if elapsed_windows == 1 {
                self.allowed = [self.allowed[1], 0];
                self.seen = [self.seen[1], 0];
            } else {
                self.allowed = [0; 2];
                self.seen = [0; 2];
            }
            self.window_start = Some(window_start + Duration::from_secs(elapsed_windows));
        }
        if let Some(last) = self.last {
            let refill = now.duration_since(last).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + refill).min(self.per_second.max(1.0));
        }
        self.last = Some(now);
        self.seen[1] += 1;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.allowed[1] += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn effective_rate(&self) -> f64 {
        let seen = self.seen[0] + self.seen[1];
        if seen == 0 {
            return 1.0;
        }
        #[allow(clippy::cast_precision_loss)]
        let rate = (self.allowed[0] + self.allowed[1]) as f64 / seen as f64;
        rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_per_second_then_refill() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(2.0);
        assert!(limiter.allow(start));
        assert!(limiter.allow(start));
        assert!(!limiter.allow(start), "the third in the same instant");
        assert!((limiter.effective_rate() - 2.0 / 3.0).abs() < 1e-9);
        // Half a second refills one token.
        assert!(limiter.allow(start + Duration::from_millis(500)));
        assert!(!limiter.allow(start + Duration::from_millis(500)));
        // Never more than a second's budget, however long the pause.
        let later = start + Duration::from_secs(60);
        assert!(limiter.allow(later));
        assert!(limiter.allow(later));
        assert!(!limiter.allow(later));
    }

    #[test]
    fn zero_keeps_nothing() {
        let mut limiter = RateLimiter::new(0.0);
        let now = Instant::now();
        assert!(!limiter.allow(now));
        assert!(!limiter.allow(now + Duration::from_secs(5)));
        assert_eq!(limiter.effective_rate(), 0.0);
    }
}

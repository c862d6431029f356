//! Priority sampling: the local root of a trace decides whether it is kept.
//!
//! With a rule rate (`DD_TRACE_SAMPLE_RATE`) the rule decides (priority 2 or
//! -1, mechanism 3, `_dd.rule_psr`), and kept traces pass a rate limiter
//! (`DD_TRACE_RATE_LIMIT`, `_dd.limit_psr`). Otherwise the agent's
//! `rate_by_service` from its last response decides (priority 1 or 0,
//! mechanism 1, `_dd.agent_psr`); before the agent has answered, every trace
//! is kept (mechanism 0). The decision is a pure function of the trace id
//! and the rate (Datadog's Knuth hash), so every tracer agrees on it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

pub(crate) use crate::record::sampling_decision::*;

const KNUTH_FACTOR: u64 = 1_111_111_111_111_111_111;

/// Whether a trace id falls within a rate, the way every Datadog tracer
/// computes it (on the lower 64 bits of the trace id).
pub(crate) fn sampled_by_rate(trace_id_low: u64, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 || rate.is_nan() {
        return false;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let threshold = (rate * u64::MAX as f64) as u64;
    trace_id_low.wrapping_mul(KNUTH_FACTOR) <= threshold
}

pub(crate) struct Sampler {
    rule_rate: Option<f64>,
    limiter: Mutex<RateLimiter>,
    /// The environment whose agent rates apply to this process.
    env: String,
    agent_rates: RwLock<Arc<AgentRates>>,
    /// Changes when the agent's rates do: threads keep the rates (and
    /// their last look-up) and check this one word, rather than take the
    /// lock (whose reader count every thread writes) for every trace.
    rates_version: AtomicU64,
    /// Tells this sampler's rates from an earlier tracer's in the caches.
    id: u64,
}

/// The agent's rates for this process's environment, keyed by service so a
/// root's look-up builds no string.
#[derive(Default, PartialEq)]
struct AgentRates {
    by_service: HashMap<String, f64>,
    default: Option<f64>,
}

impl AgentRates {
    fn rate_for(&self, service: &str) -> Option<f64> {
        self.by_service.get(service).copied().or(self.default)
    }
}

/// A thread's copy of a sampler's agent rates, and its last look-up.
struct CachedRates {
    sampler: u64,
    version: u64,
    rates: Arc<AgentRates>,
    service: String,
    rate: Option<f64>,
}

thread_local! {
    static CACHED_RATES: RefCell<Option<CachedRates>> = const { RefCell::new(None) };
}

impl Sampler {
    pub(crate) fn new(rule_rate: Option<f64>, rate_limit: f64, env: Option<&str>) -> Sampler {
        Sampler {
            rule_rate,
            limiter: Mutex::new(RateLimiter::new(rate_limit)),
            env: env.unwrap_or_default().to_owned(),
            agent_rates: RwLock::new(Arc::default()),
            rates_version: AtomicU64::new(0),
            id: {
                static NEXT_ID: AtomicU64 = AtomicU64::new(1);
                NEXT_ID.fetch_add(1, Ordering::Relaxed)
            },
        }
    }

    /// The agent's rate for `service` (or its default), through this
    /// thread's cache.
    fn agent_rate(&self, service: &str) -> Option<f64> {
        let version = self.rates_version.load(Ordering::Acquire);
        let cached = CACHED_RATES.try_with(|cache| {
            let mut cache = cache.try_borrow_mut().ok()?;
            match &mut *cache {
                Some(cached) if cached.sampler == self.id && cached.version == version => {
                    if cached.service != service {
                        cached.rate = cached.rates.rate_for(service);
                        service.clone_into(&mut cached.service);
                    }
                    Some(cached.rate)
                }
                stale => {
                    // Published before the version changed (see `update_agent_rates`).
                    let rates = Arc::clone(
                        &self
                            .agent_rates
                            .read()
                            .unwrap_or_else(PoisonError::into_inner),
                    );
                    let rate = rates.rate_for(service);
                    *stale = Some(CachedRates {
                        sampler: self.id,
                        version,
                        rates,
                        service: service.to_owned(),
                        rate,
                    });
                    Some(rate)
                }
            }
        });
        match cached {
            Ok(Some(rate)) => rate,
            _ => self
                .agent_rates
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .rate_for(service),
        }
    }

    pub(crate) fn decide(&self, trace_id_low: u64, service: &str) -> SamplingDecision {
        if let Some(rate) = self.rule_rate {
            let mut decision = SamplingDecision {
                priority: USER_REJECT,
                mechanism: Some(MECHANISM_RULE),
                agent_rate: None,
                rule_rate: Some(rate),
                limit_rate: None,
            };
            if sampled_by_rate(trace_id_low, rate) {
                let mut limiter = self.limiter.lock().unwrap_or_else(PoisonError::into_inner);
                let allowed = limiter.allow(Instant::now());
                decision.limit_rate = Some(limiter.effective_rate());
                if allowed {
                    decision.priority = USER_KEEP;
                }
            }
            return decision;
        }
        // As ddtrace: without a rate from the agent every trace is kept by
        // the default mechanism, and no agent rate is reported.
        let (rate, mechanism, agent_rate) = match self.agent_rate(service) {
            Some(rate) => (rate, MECHANISM_AGENT_RATE, Some(rate)),
            None => (1.0, MECHANISM_DEFAULT, None),
        };
        SamplingDecision {
            priority: if sampled_by_rate(trace_id_low, rate) {
                AUTO_KEEP
            } else {
                AUTO_REJECT
            },
            mechanism: Some(mechanism),
            agent_rate,
            rule_rate: None,
            limit_rate: None,
        }
    }

    /// Takes the agent's `rate_by_service` from a trace response body. A body
    /// that is not the expected JSON leaves the rates as they were.
    pub(crate) fn update_agent_rates(&self, body: &str) -> bool {
        // Read as a JSON value, not through a derive: serde_derive (and the
        // syn it builds) stays out of every user's build for this one shape.
        let Ok(response) = serde_json::from_str::<serde_json::Value>(body) else {
            return false;
        };
        let Some(by_service) = response
            .get("rate_by_service")
            .and_then(serde_json::Value::as_object)
        else {
            return false;
        };
        // All numbers, or the answer is not the expected one.
        let Some(by_service) = by_service
            .iter()
            .map(|(key, rate)| Some((key, rate.as_f64()?)))
            .collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        let mut rates = AgentRates::default();
        for (key, rate) in by_service {
            if !(0.0..=1.0).contains(&rate) {
                continue;
            }
            let Some((service, env)) = key
                .strip_prefix("service:")
                .and_then(|rest| rest.split_once(",env:"))
            else {
                continue;
            };
            if service.is_empty() && env.is_empty() {
                rates.default = Some(rate);
            } else if env == self.env {
                rates.by_service.insert(service.to_owned(), rate);
            }
        }
        let mut current = self
            .agent_rates
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if **current != rates {
            *current = Arc::new(rates);
            self.rates_version.fetch_add(1, Ordering::Release);
        }
        true
    }
}

/// A per-second budget for rule-kept traces, with the kept ratio of the
/// current and previous second as its effective rate.
struct RateLimiter {
    per_second: f64,
    tokens: f64,
    last: Option<Instant>,
    window_start: Option<Instant>,
    allowed: [u64; 2],
    seen: [u64; 2],
}

impl RateLimiter {
    fn new(per_second: f64) -> RateLimiter {
        RateLimiter {
            per_second,
            tokens: per_second,
            last: None,
            window_start: None,
            allowed: [0; 2],
            seen: [0; 2],
        }
    }

    fn allow(&mut self, now: Instant) -> bool {
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
            self.window_start =
                Some(window_start + std::time::Duration::from_secs(elapsed_windows));
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

    fn effective_rate(&self) -> f64 {
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
    fn knuth_sampling_matches_rate() {
        let kept = (1..=100_000u64)
            .map(|i| crate::util::id::random_u64() ^ i)
            .filter(|id| sampled_by_rate(*id, 0.3))
            .count();
        assert!(
            (27_000..33_000).contains(&kept),
            "{kept} of 100000 kept at 0.3"
        );
        assert!(sampled_by_rate(42, 1.0));
        assert!(!sampled_by_rate(42, 0.0));
    }

    #[test]
    fn knuth_sampling_is_deterministic_per_id() {
        // 1 * factor is below half the range, so id 1 is kept at 0.5 by every tracer.
        assert!(sampled_by_rate(1, 0.5));
        // 9 * factor = 9999999999999999999, above half the range.
        assert!(!sampled_by_rate(9, 0.5));
    }

    #[test]
    fn default_keeps_until_agent_rates_arrive() {
        let sampler = Sampler::new(None, 100.0, Some("prod"));
        let decision = sampler.decide(5, "svc");
        assert_eq!(decision.priority, AUTO_KEEP);
        assert_eq!(decision.mechanism, Some(MECHANISM_DEFAULT));
        assert_eq!(decision.agent_rate, None);

        assert!(sampler.update_agent_rates(
            r#"{"rate_by_service":{"service:svc,env:prod":0.0,"service:,env:":1.0}}"#
        ));
        let decision = sampler.decide(5, "svc");
        assert_eq!(decision.priority, AUTO_REJECT);
        assert_eq!(decision.mechanism, Some(MECHANISM_AGENT_RATE));
        let other = sampler.decide(5, "other");
        assert_eq!(other.priority, AUTO_KEEP);
        assert_eq!(other.mechanism, Some(MECHANISM_AGENT_RATE));
    }

    #[test]
    fn each_sampler_decides_with_its_own_latest_rates() {
        let first = Sampler::new(None, 100.0, Some("prod"));
        let second = Sampler::new(None, 100.0, Some("prod"));
        assert!(first.update_agent_rates(r#"{"rate_by_service":{"service:svc,env:prod":0.0}}"#));
        // Alternating on one thread: neither sees the other's cached rates.
        for _ in 0..3 {
            assert_eq!(first.decide(5, "svc").priority, AUTO_REJECT);
            assert_eq!(second.decide(5, "svc").priority, AUTO_KEEP);
            assert_eq!(second.decide(5, "svc").mechanism, Some(MECHANISM_DEFAULT));
        }
        assert!(first.update_agent_rates(r#"{"rate_by_service":{"service:svc,env:prod":1.0}}"#));
        assert_eq!(first.decide(5, "svc").priority, AUTO_KEEP);
        assert_eq!(first.decide(5, "svc").agent_rate, Some(1.0));
        // From another thread too.
        let first = std::sync::Arc::new(first);
        let elsewhere = std::sync::Arc::clone(&first);
        let priority = std::thread::spawn(move || elsewhere.decide(5, "svc").priority)
            .join()
            .unwrap();
        assert_eq!(priority, AUTO_KEEP);
    }

    #[test]
    fn garbage_agent_response_keeps_rates() {
        let sampler = Sampler::new(None, 100.0, Some("prod"));
        assert!(sampler.update_agent_rates(r#"{"rate_by_service":{"service:,env:":0.0}}"#));
        assert!(!sampler.update_agent_rates("<html>bad gateway</html>"));
        assert!(!sampler.update_agent_rates("OK"));
        assert_eq!(sampler.decide(5, "svc").priority, AUTO_REJECT);
    }

    #[test]
    fn rule_rate_and_limiter() {
        let sampler = Sampler::new(Some(1.0), 10.0, None);
        let decisions: Vec<SamplingDecision> =
            (1..=50).map(|id| sampler.decide(id, "svc")).collect();
        let kept = decisions.iter().filter(|d| d.priority == USER_KEEP).count();
        assert_eq!(kept, 10, "the limiter keeps its per-second budget");
        assert!(decisions
            .iter()
            .all(|d| d.mechanism == Some(MECHANISM_RULE)));
        assert!(decisions.iter().all(|d| d.rule_rate == Some(1.0)));
        let last = decisions.last().unwrap();
        assert_eq!(last.priority, USER_REJECT);
        assert!((last.limit_rate.unwrap() - 0.2).abs() < 1e-9);

        let never = Sampler::new(Some(0.0), 10.0, None).decide(1, "svc");
        assert_eq!(never.priority, USER_REJECT);
        assert_eq!(
            never.limit_rate, None,
            "the limiter only sees rule-kept traces"
        );
    }
}

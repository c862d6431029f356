//! Priority sampling: the local root of a trace decides whether it is kept.
//!
//! The first sampling rule (`DD_TRACE_SAMPLING_RULES`, then
//! `DD_TRACE_SAMPLE_RATE` as a rule for every trace) that matches the root
//! decides (priority 2 or -1, mechanism 3, `_dd.rule_psr`), and kept
//! traces pass a rate limiter (`DD_TRACE_RATE_LIMIT`, `_dd.limit_psr`).
//! Otherwise the agent's `rate_by_service` from its last response decides
//! (priority 1 or 0, mechanism 1, `_dd.agent_psr`); before the agent has
//! answered, every trace is kept (mechanism 0). The decision is a pure
//! function of the trace id and the rate (Datadog's Knuth hash), so every
//! tracer agrees on it.
//!
//! **When.** Rules that look at the root's name, resource or tags would see
//! too little when the root starts (a resource or tag is often set later),
//! so with such rules a new trace's decision is *deferred*
//! ([`SamplingDecision::deferred`]) and made at the first of: its context
//! injected into headers (downstream needs a priority), a chunk of it
//! leaving the process (the root finished, or a partial flush), an explicit
//! keep or drop. ddtrace decides at the same moments (its root's finish or
//! an injection); dd-trace-go decides at the root's start and samples again
//! at its finish. Without such rules nothing depends on what changes, and
//! the decision is made at the root's start, at no extra cost. An inherited
//! decision (from headers) is never made again here.
//!
//! Single spans of dropped traces are kept by `DD_SPAN_SAMPLING_RULES`
//! (`span_rules.rs`).

mod glob;
mod limiter;
mod rules;
mod span_rules;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

pub(crate) use crate::record::sampling_decision::*;
use crate::record::SpanRecord;
use limiter::RateLimiter;
pub(crate) use rules::RootView;
use rules::TraceRule;
use span_rules::SpanRule;

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
    /// `DD_TRACE_SAMPLING_RULES`, then `DD_TRACE_SAMPLE_RATE` as a rule for
    /// every trace.
    rules: Vec<TraceRule>,
    /// Some rule looks at more than the service: decisions wait (see the
    /// module's docs).
    defer: bool,
    span_rules: Vec<SpanRule>,
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
            rules: rule_rate.map(TraceRule::catch_all).into_iter().collect(),
            defer: false,
            span_rules: Vec::new(),
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

    /// The sampler of a configuration: its rules read, each bad one left out
    /// with one warning per variable.
    pub(crate) fn from_config(config: &crate::Config) -> Sampler {
        let mut sampler =
            Sampler::new(config.sample_rate, config.rate_limit, config.env.as_deref());
        if let Some(json) = &config.trace_sampling_rules {
            let (rules, problems) = rules::parse_trace_rules(json);
            warn_rules("DD_TRACE_SAMPLING_RULES", &problems, rules.len());
            sampler = sampler.with_trace_rules(rules);
        }
        let span_json = match (
            &config.span_sampling_rules,
            &config.span_sampling_rules_file,
        ) {
            (Some(json), _) => Some(("DD_SPAN_SAMPLING_RULES", json.clone())),
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(json) => Some(("DD_SPAN_SAMPLING_RULES_FILE", json)),
                Err(error) => {
                    crate::util::diagnostics::warn(format_args!(
                        "DD_SPAN_SAMPLING_RULES_FILE: cannot read {path:?} ({error}); no single-span sampling rules"
                    ));
                    None
                }
            },
            (None, None) => None,
        };
        if let Some((variable, json)) = span_json {
            let (rules, problems) = span_rules::parse_span_rules(&json);
            warn_rules(variable, &problems, rules.len());
            sampler.span_rules = rules;
        }
        sampler
    }

    /// Puts `rules` before the catch-all rule of `DD_TRACE_SAMPLE_RATE`.
    fn with_trace_rules(mut self, mut rules: Vec<TraceRule>) -> Sampler {
        rules.append(&mut self.rules);
        self.defer = rules.iter().any(TraceRule::needs_root);
        self.rules = rules;
        self
    }

    /// The decision of a trace that begins with a root of `service`: made
    /// now, or deferred when rules need more of the root than its service.
    #[inline]
    pub(crate) fn begin(&self, trace_id_low: u64, service: &str) -> SamplingDecision {
        if self.defer {
            SamplingDecision::deferred()
        } else {
            self.decide(trace_id_low, service)
        }
    }

    /// Whether single-span rules may keep spans of dropped traces.
    #[inline]
    pub(crate) fn has_span_rules(&self) -> bool {
        !self.span_rules.is_empty()
    }

    /// Applies the single-span rules to the spans of a dropped chunk.
    pub(crate) fn sample_spans(&self, spans: &mut [SpanRecord], default_service: &str) {
        span_rules::sample_spans(&self.span_rules, spans, default_service);
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

    /// The decision for a root known only by its service.
    pub(crate) fn decide(&self, trace_id_low: u64, service: &str) -> SamplingDecision {
        self.decide_root(
            trace_id_low,
            &RootView {
                service,
                name: "",
                resource: "",
                record: None,
            },
        )
    }

    /// The decision for this root: the first matching rule's, else the
    /// agent's rate.
    pub(crate) fn decide_root(&self, trace_id_low: u64, root: &RootView<'_>) -> SamplingDecision {
        let service = root.service;
        if let Some(rule) = self.rules.iter().find(|rule| rule.matches(root)) {
            let rate = rule.rate;
            let mut decision = SamplingDecision {
                priority: USER_REJECT,
                mechanism: Some(rule.mechanism),
                agent_rate: None,
                rule_rate: Some(rate),
                limit_rate: None,
                deferred: false,
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
            deferred: false,
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

/// One warning for a variable's bad rules (the good ones are used).
fn warn_rules(variable: &str, problems: &[String], kept: usize) {
    if !problems.is_empty() {
        let using = match kept {
            0 => "no rules".to_owned(),
            1 => "using the one valid rule".to_owned(),
            n => format!("using the {n} valid rules"),
        };
        crate::util::diagnostics::warn(format_args!(
            "{variable}: {}; {using}",
            problems.join("; ")
        ));
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

    #[test]
    fn rules_come_before_the_sample_rate_and_defer_only_when_needed() {
        let rules = |json: &str| rules::parse_trace_rules(json).0;
        let sampler = Sampler::new(Some(0.0), 100.0, None)
            .with_trace_rules(rules(r#"[{"service":"web","sample_rate":1}]"#));
        assert!(!sampler.defer, "a service is known when the trace begins");
        let kept = sampler.begin(5, "web");
        assert_eq!((kept.priority, kept.rule_rate), (USER_KEEP, Some(1.0)));
        let other = sampler.begin(5, "db");
        assert_eq!(
            (other.priority, other.rule_rate),
            (USER_REJECT, Some(0.0)),
            "DD_TRACE_SAMPLE_RATE is the last rule"
        );

        let sampler = Sampler::new(None, 100.0, None)
            .with_trace_rules(rules(r#"[{"resource":"GET /health","sample_rate":0}]"#));
        assert!(sampler.defer);
        assert!(sampler.begin(5, "web").deferred);
        static SPEC: crate::record::spec::SpanSpec = crate::record::spec::SpanSpec::new("req");
        let mut root = SpanRecord::new(1, 0, &SPEC);
        root.set_resource("GET /health".into());
        let decision = sampler.decide_root(5, &RootView::of(&root, "web"));
        assert_eq!(decision.priority, USER_REJECT);
        assert_eq!(decision.mechanism, Some(MECHANISM_RULE));
        root.set_resource("GET /users".into());
        let decision = sampler.decide_root(5, &RootView::of(&root, "web"));
        assert_eq!(
            (decision.priority, decision.mechanism),
            (AUTO_KEEP, Some(MECHANISM_DEFAULT)),
            "no rule matches: the agent's rates (none yet) decide"
        );
    }

    #[test]
    fn remote_provenance_is_its_own_mechanism() {
        let sampler = Sampler::new(None, 100.0, None).with_trace_rules(
            rules::parse_trace_rules(r#"[{"sample_rate":1,"provenance":"customer"}]"#).0,
        );
        assert_eq!(
            sampler.decide(5, "svc").mechanism,
            Some(MECHANISM_REMOTE_USER_RULE)
        );
    }
}

//! Single-span sampling (`DD_SPAN_SAMPLING_RULES`, or the file named by
//! `DD_SPAN_SAMPLING_RULES_FILE`): spans kept out of traces that sampling
//! dropped, by `{"service", "name", "sample_rate", "max_per_second"}`
//! (globs as in trace rules; every field optional: `*`, `*`, 1, no limit).
//! The first rule matching a span decides it: kept when its span id falls
//! within the rate (the Knuth hash of the trace rules, on the span id) and
//! the rule's limiter allows it. A kept span carries
//! `_dd.span_sampling.mechanism` 8, `_dd.span_sampling.rule_rate` and,
//! when the rule has a limit, `_dd.span_sampling.max_per_second`.

use std::borrow::Cow;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use serde_json::Value;

use super::glob::Glob;
use super::limiter::RateLimiter;
use super::rules::{glob_field, glob_matches, parse_list, rate_field};
use crate::record::SpanRecord;

/// `_dd.span_sampling.mechanism`: single-span sampling.
pub(crate) const MECHANISM_SPAN_RULE: f64 = 8.0;

pub(crate) struct SpanRule {
    service: Option<Glob>,
    name: Option<Glob>,
    rate: f64,
    max_per_second: Option<f64>,
    /// `None`: no limit.
    limiter: Option<Mutex<RateLimiter>>,
}

impl std::fmt::Debug for SpanRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanRule")
            .field("service", &self.service)
            .field("name", &self.name)
            .field("rate", &self.rate)
            .field("max_per_second", &self.max_per_second)
            .finish_non_exhaustive()
    }
}

pub(crate) fn parse_span_rules(json: &str) -> (Vec<SpanRule>, Vec<String>) {
    parse_list(json, |fields| {
        let max_per_second = match fields.get("max_per_second") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_f64() {
                Some(limit) if limit >= 0.0 && limit.is_finite() => Some(limit),
                _ => return Err(format!("max_per_second {value} is not a number ≥ 0")),
            },
        };
        Ok(SpanRule {
            service: glob_field(fields, "service")?,
            name: glob_field(fields, "name")?,
            rate: rate_field(fields)?,
            max_per_second,
            limiter: max_per_second.map(|limit| Mutex::new(RateLimiter::new(limit))),
        })
    })
}

impl SpanRule {
    fn matches(&self, record: &SpanRecord, default_service: &str) -> bool {
        glob_matches(
            self.service.as_ref(),
            record.service().unwrap_or(default_service),
        ) && glob_matches(self.name.as_ref(), record.name())
    }

    fn keeps(&self, span_id: u64, now: Instant) -> bool {
        super::sampled_by_rate(span_id, self.rate)
            && self.limiter.as_ref().is_none_or(|limiter| {
                limiter
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .allow(now)
            })
    }
}

/// Marks the spans of a dropped chunk that a rule keeps.
pub(crate) fn sample_spans(rules: &[SpanRule], spans: &mut [SpanRecord], default_service: &str) {
    let now = Instant::now();
    for record in spans {
        let Some(rule) = rules.iter().find(|r| r.matches(record, default_service)) else {
            continue;
        };
        if !rule.keeps(record.span_id, now) {
            continue;
        }
        record.set_tag(
            Cow::Borrowed("_dd.span_sampling.mechanism"),
            MECHANISM_SPAN_RULE.into(),
        );
        record.set_tag(
            Cow::Borrowed("_dd.span_sampling.rule_rate"),
            rule.rate.into(),
        );
        if let Some(limit) = rule.max_per_second {
            record.set_tag(
                Cow::Borrowed("_dd.span_sampling.max_per_second"),
                limit.into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::spec::SpanSpec;

    static DB: SpanSpec = SpanSpec::new("db.query");
    static WEB: SpanSpec = SpanSpec::new("web.request");

    fn metric(record: &SpanRecord, key: &str) -> Option<f64> {
        record
            .metrics()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    }

    #[test]
    fn first_rule_per_span_with_its_limit() {
        let (rules, problems) = parse_span_rules(
            r#"[{"service":"svc","name":"db.*","sample_rate":1.0,"max_per_second":2},
                {"name":"web.request","sample_rate":0.0}]"#,
        );
        assert!(problems.is_empty());
        let mut spans: Vec<SpanRecord> = (1..=4)
            .map(|id| SpanRecord::new(id, 0, &DB))
            .chain([SpanRecord::new(9, 0, &WEB)])
            .collect();
        sample_spans(&rules, &mut spans, "svc");
        let kept: Vec<u64> = spans
            .iter()
            .filter(|s| metric(s, "_dd.span_sampling.mechanism") == Some(8.0))
            .map(|s| s.span_id)
            .collect();
        assert_eq!(kept, [1, 2], "two per second, the web span at rate 0");
        assert_eq!(metric(&spans[0], "_dd.span_sampling.rule_rate"), Some(1.0));
        assert_eq!(
            metric(&spans[0], "_dd.span_sampling.max_per_second"),
            Some(2.0)
        );
    }

    #[test]
    fn no_limit_no_max_per_second_metric() {
        let (rules, _) = parse_span_rules(r#"[{"service":"other"},{}]"#);
        let mut spans = vec![SpanRecord::new(1, 0, &DB)];
        sample_spans(&rules, &mut spans, "svc");
        assert_eq!(metric(&spans[0], "_dd.span_sampling.mechanism"), Some(8.0));
        assert_eq!(metric(&spans[0], "_dd.span_sampling.max_per_second"), None);
    }

    #[test]
    fn bad_rules_are_left_out() {
        let (rules, problems) = parse_span_rules(
            r#"[{"max_per_second":-1},{"max_per_second":"x"},{"sample_rate":2},{"name":"ok"}]"#,
        );
        assert_eq!(rules.len(), 1);
        assert_eq!(problems.len(), 3);
        let (rules, problems) = parse_span_rules("{not json");
        assert!(rules.is_empty());
        assert_eq!(problems.len(), 1);
    }
}

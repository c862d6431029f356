//! `DD_TRACE_SAMPLING_RULES`: the rules that decide a trace by its local
//! root, first match wins.
//!
//! A rule is `{"service", "name", "resource", "tags": {key: glob},
//! "sample_rate", "provenance"}`, every field optional (`sample_rate` 1).
//! Service, name and resource are globs on the root's fields; a tag glob
//! matches the root's `meta` value, or its `metrics` value when that is an
//! integer (`200`, not `200.5`: then only `*` matches), as dd-trace-go and
//! ddtrace match them. A rule with a tag the root lacks does not match.

use serde_json::Value;

use super::glob::Glob;
use crate::record::sampling_decision::{
    MECHANISM_REMOTE_DYNAMIC_RULE, MECHANISM_REMOTE_USER_RULE, MECHANISM_RULE,
};
use crate::record::tag::StaticValue;
use crate::record::SpanRecord;

/// One trace sampling rule.
#[derive(Debug, PartialEq)]
pub(crate) struct TraceRule {
    service: Option<Glob>,
    name: Option<Glob>,
    resource: Option<Glob>,
    tags: Vec<(String, Glob)>,
    pub(crate) rate: f64,
    /// `_dd.p.dm`: 3 for a local rule, 11 / 12 for rules whose provenance
    /// is `customer` / `dynamic` (remote configuration's, as Datadog's
    /// tracers mark them).
    pub(crate) mechanism: u8,
}

/// What rules look at: the local root span as it is when the decision is
/// made.
pub(crate) struct RootView<'a> {
    pub(crate) service: &'a str,
    pub(crate) name: &'a str,
    pub(crate) resource: &'a str,
    /// Its tags; `None` when the root could not be reached (a partial
    /// flush while the root is open on another thread): rules with tags
    /// then match nothing.
    pub(crate) record: Option<&'a SpanRecord>,
}

impl<'a> RootView<'a> {
    /// The view of a root record; `default_service` when it has none.
    pub(crate) fn of(record: &'a SpanRecord, default_service: &'a str) -> RootView<'a> {
        RootView {
            service: record.service().unwrap_or(default_service),
            name: record.name(),
            resource: record.resource().unwrap_or_else(|| record.name()),
            record: Some(record),
        }
    }

    fn tag_matches(&self, key: &str, glob: &Glob) -> bool {
        let Some(record) = self.record else {
            return false;
        };
        if let Some((_, value)) = record.meta().iter().find(|(k, _)| k == key) {
            return glob.matches(value);
        }
        if let Some((_, value)) = record.metrics().iter().find(|(k, _)| k == key) {
            return number_matches(*value, glob);
        }
        match record
            .spec
            .tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value)
        {
            Some(StaticValue::Str(value)) => glob.matches(value),
            Some(StaticValue::Number(value)) => number_matches(value, glob),
            None => false,
        }
    }
}

/// A metric matches a glob by its integer text; a fraction only `*`.
fn number_matches(value: f64, glob: &Glob) -> bool {
    if glob.is_any() {
        return true;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let integer = value.is_finite() && value.fract() == 0.0 && value.abs() < 9.0e18;
    #[allow(clippy::cast_possible_truncation)]
    let text = integer.then(|| (value as i64).to_string());
    text.is_some_and(|text| glob.matches(&text))
}

impl TraceRule {
    /// A rule for every trace: what `DD_TRACE_SAMPLE_RATE` is, after the
    /// list.
    pub(crate) fn catch_all(rate: f64) -> TraceRule {
        TraceRule {
            service: None,
            name: None,
            resource: None,
            tags: Vec::new(),
            rate,
            mechanism: MECHANISM_RULE,
        }
    }

    /// Whether the rule only looks at the service (known when a trace
    /// begins): such rules can decide at once.
    pub(crate) fn needs_root(&self) -> bool {
        self.name.is_some() || self.resource.is_some() || !self.tags.is_empty()
    }

    pub(crate) fn matches(&self, root: &RootView<'_>) -> bool {
        glob_matches(self.service.as_ref(), root.service)
            && glob_matches(self.name.as_ref(), root.name)
            && glob_matches(self.resource.as_ref(), root.resource)
            && self
                .tags
                .iter()
                .all(|(key, glob)| root.tag_matches(key, glob))
    }
}

pub(crate) fn glob_matches(glob: Option<&Glob>, value: &str) -> bool {
    glob.is_none_or(|glob| glob.matches(value))
}

/// Reads a rule list; each bad rule is left out and described in the
/// returned problems (one warning names them all).
pub(crate) fn parse_trace_rules(json: &str) -> (Vec<TraceRule>, Vec<String>) {
    parse_list(json, parse_trace_rule)
}

/// A JSON list, each element through `parse`; JSON that is not a list
/// gives no rules and one problem.
pub(crate) fn parse_list<T>(
    json: &str,
    parse: impl Fn(&serde_json::Map<String, Value>) -> Result<T, String>,
) -> (Vec<T>, Vec<String>) {
    let list = match serde_json::from_str::<Value>(json) {
        Ok(Value::Array(list)) => list,
        Ok(_) => return (Vec::new(), vec!["not a JSON list".to_owned()]),
        Err(error) => return (Vec::new(), vec![format!("not JSON ({error})")]),
    };
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    for (index, rule) in list.iter().enumerate() {
        let parsed = match rule {
            Value::Object(fields) => parse(fields),
            _ => Err("not an object".to_owned()),
        };
        match parsed {
            Ok(rule) => rules.push(rule),
            Err(problem) => problems.push(format!("rule {index}: {problem}")),
        }
    }
    (rules, problems)
}

/// An optional glob field.
pub(crate) fn glob_field(
    fields: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<Glob>, String> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(pattern)) => Ok(Some(Glob::new(pattern))),
        Some(other) => Err(format!("{key} is {other}, not a string")),
    }
}

/// `sample_rate`, 0 to 1 (1 when absent).
pub(crate) fn rate_field(fields: &serde_json::Map<String, Value>) -> Result<f64, String> {
    match fields.get("sample_rate") {
        None | Some(Value::Null) => Ok(1.0),
        Some(value) => match value.as_f64() {
            Some(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
            _ => Err(format!("sample_rate {value} is not a number from 0 to 1")),
        },
    }
}

fn parse_trace_rule(fields: &serde_json::Map<String, Value>) -> Result<TraceRule, String> {
    let tags = match fields.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(tags)) => tags
            .iter()
            .map(|(key, glob)| match glob {
                Value::String(pattern) => Ok((key.clone(), Glob::new(pattern))),
                other => Err(format!("tag {key:?} is {other}, not a string")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => Err(format!("tags is {other}, not an object"))?,
    };
    let mechanism = match fields.get("provenance").and_then(Value::as_str) {
        Some("customer") => MECHANISM_REMOTE_USER_RULE,
        Some("dynamic") => MECHANISM_REMOTE_DYNAMIC_RULE,
        _ => MECHANISM_RULE,
    };
    Ok(TraceRule {
        service: glob_field(fields, "service")?,
        name: glob_field(fields, "name")?,
        resource: glob_field(fields, "resource")?,
        tags,
        rate: rate_field(fields)?,
        mechanism,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::spec::SpanSpec;
    use std::borrow::Cow;

    static SPEC: SpanSpec = SpanSpec::new("web.request");

    fn root() -> SpanRecord {
        let mut record = SpanRecord::new(1, 0, &SPEC);
        record.set_resource(Cow::Borrowed("GET /users"));
        record.set_tag(Cow::Borrowed("tier"), "Gold".into());
        record.set_tag(Cow::Borrowed("http.status_code"), 200.into());
        record.set_tag(Cow::Borrowed("retries"), 3.into());
        record.set_tag(Cow::Borrowed("ratio"), 0.5.into());
        record
    }

    fn first_match(json: &str, record: &SpanRecord) -> Option<f64> {
        let (rules, problems) = parse_trace_rules(json);
        assert!(problems.is_empty(), "{problems:?}");
        let view = RootView::of(record, "svc");
        rules.iter().find(|r| r.matches(&view)).map(|r| r.rate)
    }

    #[test]
    fn fields_and_tags() {
        let root = root();
        let cases = [
            (r#"[{"service":"SVC","sample_rate":0.1}]"#, Some(0.1)),
            (r#"[{"service":"other","sample_rate":0.1}]"#, None),
            (r#"[{"name":"web.*","sample_rate":0.2}]"#, Some(0.2)),
            (
                r#"[{"resource":"GET /u?ers","sample_rate":0.3}]"#,
                Some(0.3),
            ),
            (r#"[{"tags":{"tier":"gold"},"sample_rate":0.4}]"#, Some(0.4)),
            (r#"[{"tags":{"tier":"silver"},"sample_rate":0.4}]"#, None),
            (r#"[{"tags":{"missing":"*"},"sample_rate":0.4}]"#, None),
            (r#"[{"tags":{"http.status_code":"2??"}}]"#, Some(1.0)),
            (r#"[{"tags":{"retries":"3"},"sample_rate":0.5}]"#, Some(0.5)),
            (r#"[{"tags":{"ratio":"0.5"},"sample_rate":0.5}]"#, None),
            (r#"[{"tags":{"ratio":"*"},"sample_rate":0.6}]"#, Some(0.6)),
            (r#"[{"tags":{"ratio":"0*"},"sample_rate":0.6}]"#, None),
        ];
        for (json, expected) in cases {
            assert_eq!(first_match(json, &root), expected, "{json}");
        }
    }

    #[test]
    fn first_match_wins() {
        let root = root();
        let json = r#"[{"service":"nope","sample_rate":0.1},
                       {"name":"web.request","sample_rate":0.2},
                       {"sample_rate":0.3}]"#;
        assert_eq!(first_match(json, &root), Some(0.2));
    }

    #[test]
    fn provenance_sets_the_mechanism() {
        let (rules, _) = parse_trace_rules(
            r#"[{"provenance":"customer"},{"provenance":"dynamic"},{"provenance":"local"},{}]"#,
        );
        let mechanisms: Vec<u8> = rules.iter().map(|r| r.mechanism).collect();
        assert_eq!(mechanisms, [11, 12, 3, 3]);
    }

    #[test]
    fn bad_input_never_panics_and_keeps_the_good_rules() {
        for json in ["", "{", "{}", "42", "null", r#""rules""#, "[1, 2", "\u{0}"] {
            let (rules, problems) = parse_trace_rules(json);
            assert!(rules.is_empty(), "{json:?}");
            assert_eq!(problems.len(), 1, "{json:?}");
        }
        let (rules, problems) = parse_trace_rules(
            r#"[{"sample_rate":1.5},{"sample_rate":"half"},{"service":3},
                {"tags":"x"},{"tags":{"k":1}},7,{"sample_rate":-0.1},
                {"service":"good","sample_rate":0.5}]"#,
        );
        assert_eq!(problems.len(), 7, "{problems:?}");
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].rate, 0.5);
        assert!(problems[0].starts_with("rule 0: sample_rate"));
    }
}

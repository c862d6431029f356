//! `GET /trace/config`: the tracer's resolved configuration under the
//! names system-tests compares across tracers.
//!
//! `Config` has getters for service, env, version, agent URL, enabled and
//! global tags; those come from the tracer's own resolution. The sample
//! rate, rate limit, debug flag and extract styles have no public getter
//! yet, so they are read from the same variables with the same rules as
//! `ddspan-runtime/src/config/env.rs` (a malformed value is the default).
//! Features ddspan does not have (DogStatsD, runtime metrics, profiling,
//! data streams, the OTel API, a log level) answer `null` or `"false"` as
//! ddtrace reports a feature that is off.

use ddspan::{Config, Style};
use serde::Serialize;

/// The answer: `{"config": {...}}`, every value a string or `null`.
#[derive(Debug, Serialize)]
pub(crate) struct TraceConfig {
    config: Fields,
}

#[derive(Debug, Serialize)]
struct Fields {
    dd_service: Option<String>,
    dd_log_level: Option<String>,
    dd_trace_sample_rate: Option<String>,
    dd_trace_enabled: Option<String>,
    dd_runtime_metrics_enabled: Option<String>,
    dd_tags: Option<String>,
    dd_trace_propagation_style: Option<String>,
    dd_trace_debug: Option<String>,
    dd_trace_otel_enabled: Option<String>,
    dd_trace_sample_ignore_parent: Option<String>,
    dd_env: Option<String>,
    dd_version: Option<String>,
    dd_trace_agent_url: Option<String>,
    dd_trace_rate_limit: Option<String>,
    dd_dogstatsd_host: Option<String>,
    dd_dogstatsd_port: Option<String>,
    dd_logs_injection: Option<String>,
    dd_profiling_enabled: Option<String>,
    dd_data_streams_enabled: Option<String>,
}

impl TraceConfig {
    /// The configuration the tracer was started with, completed from
    /// `lookup` (the process environment in the server).
    pub(crate) fn of(config: &Config, lookup: impl Fn(&str) -> Option<String>) -> TraceConfig {
        let var = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let off = || Some("false".to_owned());
        let tags = config
            .global_tags()
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(",");
        let sample_rate = var("DD_TRACE_SAMPLE_RATE")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r));
        let rate_limit = var("DD_TRACE_RATE_LIMIT")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|r| r.is_finite() && *r >= 0.0)
            .unwrap_or(100.0);
        let debug = var("DD_TRACE_DEBUG")
            .and_then(|v| flag(&v))
            .unwrap_or(false);
        let styles = var("DD_TRACE_PROPAGATION_STYLE_EXTRACT")
            .or_else(|| var("DD_TRACE_PROPAGATION_STYLE"))
            .map_or_else(Style::defaults, |list| styles(&list));
        TraceConfig {
            config: Fields {
                dd_service: Some(config.service().to_owned()),
                dd_log_level: None,
                dd_trace_sample_rate: sample_rate.map(python_float),
                dd_trace_enabled: Some(config.enabled().to_string()),
                dd_runtime_metrics_enabled: off(),
                dd_tags: Some(tags),
                dd_trace_propagation_style: Some(
                    styles
                        .iter()
                        .filter_map(|s| style_name(*s))
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                dd_trace_debug: Some(debug.to_string()),
                dd_trace_otel_enabled: off(),
                dd_trace_sample_ignore_parent: None,
                dd_env: config.env().map(str::to_owned),
                dd_version: config.version().map(str::to_owned),
                dd_trace_agent_url: Some(config.agent_url().to_string()),
                dd_trace_rate_limit: Some(python_number(rate_limit)),
                dd_dogstatsd_host: None,
                dd_dogstatsd_port: None,
                dd_logs_injection: off(),
                dd_profiling_enabled: off(),
                dd_data_streams_enabled: off(),
            },
        }
    }
}

/// The runtime's boolean reading: `true`, `1`, `yes`, `on` and their
/// opposites, in any case.
fn flag(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A comma-separated style list as the runtime reads it: unknown names and
/// `none` skipped, duplicates once.
fn styles(list: &str) -> Vec<Style> {
    let mut styles = Vec::new();
    for style in list.split(',').filter_map(Style::parse) {
        if !styles.contains(&style) {
            styles.push(style);
        }
    }
    styles
}

fn style_name(style: Style) -> Option<&'static str> {
    match style {
        Style::Datadog => Some("datadog"),
        Style::TraceContext => Some("tracecontext"),
        Style::Baggage => Some("baggage"),
        _ => None,
    }
}

/// A rate as Python's `str(float)` writes it (`1.0`, `0.5`), as ddtrace's
/// reference server answers.
fn python_float(rate: f64) -> String {
    format!("{rate:?}")
}

/// A limit as ddtrace writes its integer setting (`100`), with the
/// fraction only when there is one.
fn python_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(vars: &[(&str, &str)]) -> serde_json::Value {
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let config = Config::builder()
            .service("svc")
            .global_tag("team", "apm")
            .build();
        serde_json::to_value(TraceConfig::of(&config, lookup)).unwrap()["config"].clone()
    }

    #[test]
    fn defaults() {
        let config = fields(&[]);
        assert_eq!(config["dd_service"], "svc");
        assert_eq!(config["dd_trace_rate_limit"], "100");
        assert_eq!(config["dd_trace_sample_rate"], serde_json::Value::Null);
        assert_eq!(config["dd_trace_debug"], "false");
        assert_eq!(
            config["dd_trace_propagation_style"],
            "datadog,tracecontext,baggage"
        );
        assert!(config["dd_tags"].as_str().unwrap().contains("team:apm"));
    }

    #[test]
    fn from_the_variables() {
        let config = fields(&[
            ("DD_TRACE_SAMPLE_RATE", "1"),
            ("DD_TRACE_RATE_LIMIT", "1"),
            ("DD_TRACE_DEBUG", "TRUE"),
            ("DD_TRACE_PROPAGATION_STYLE", "b3multi,tracecontext"),
            (
                "DD_TRACE_PROPAGATION_STYLE_EXTRACT",
                " Datadog , none,datadog",
            ),
        ]);
        assert_eq!(config["dd_trace_sample_rate"], "1.0");
        assert_eq!(config["dd_trace_rate_limit"], "1");
        assert_eq!(config["dd_trace_debug"], "true");
        assert_eq!(config["dd_trace_propagation_style"], "datadog");
    }
}

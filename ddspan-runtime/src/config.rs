//! Tracer configuration: the `DD_*` environment variables, overridden by a
//! builder in code.
//!
//! Each option is described once, in the `options!` table below: its field,
//! variables, default, parser and doc line. The `Config` struct, its docs'
//! table, the builder's setters, the environment reading and the warnings
//! are generated from it (`config/table.rs`); README.md's table is checked
//! against it by a test. Every malformed value produces one clear warning
//! and falls back to the default; parsing never panics.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod agent_url;
mod env;
mod http;
mod style;
mod table;
#[cfg(test)]
mod tests;

pub use agent_url::{AgentUrl, AgentUrlError, AgentUrlErrorKind};
use env::{count, flag, number, optional, seconds, styles, tags, text, AgentFromEnv};
pub(crate) use http::HeaderTag;
pub use http::{HttpStatuses, HttpStatusesError};
pub use style::Style;

table::options! {
    /// The service name of every span that sets none of its own.
    service: String {
        env: ["DD_SERVICE"] => text,
        default: "the executable's name" => default_service(),
        set: String,
    }
    /// The `env` tag on every span.
    env: Option<String> {
        env: ["DD_ENV"] => optional(text),
        default: "none" => None,
        set: String => Some,
    }
    /// The `version` tag on the service's own spans.
    version: Option<String> {
        env: ["DD_VERSION"] => optional(text),
        default: "none" => None,
        set: String => Some,
    }
    /// Tags on every span: `k:v,k2:v2` or `k:v k2:v2`; those set in code come after.
    global_tags: Vec<(String, String)> {
        env: ["DD_TAGS"] => tags,
        default: "none" => Vec::new(),
        set_by: global_tag,
    }
    /// Where the agent listens: `http://host:port` or `unix:///path`; without it, `http://DD_AGENT_HOST:DD_TRACE_AGENT_PORT` when either is set (`localhost`, `8126` by default).
    agent_url: AgentUrl {
        env: ["DD_TRACE_AGENT_URL", "DD_AGENT_HOST", "DD_TRACE_AGENT_PORT"] => AgentFromEnv,
        default: "`unix:///var/run/datadog/apm.socket` if it exists, else `http://localhost:8126`" => default_agent_url(),
        set: AgentUrl,
    }
    /// Whether tracing is on; off, spans cost next to nothing and nothing is sent.
    enabled: bool {
        env: ["DD_TRACE_ENABLED"] => flag,
        default: "`true`" => true,
        set: bool,
    }
    /// The rate, 0 to 1, of a sampling rule for all traces; in code, clamped (NaN is 1).
    sample_rate: Option<f64> {
        env: ["DD_TRACE_SAMPLE_RATE"] => optional(number(0.0, 1.0)),
        default: "none" => None,
        set: f64 => |rate: f64| Some(if rate.is_nan() { 1.0 } else { rate.clamp(0.0, 1.0) }),
    }
    /// Traces per second the sampling rule may keep; in code, a negative or infinite value is ignored.
    rate_limit: f64 {
        env: ["DD_TRACE_RATE_LIMIT"] => number(0.0, f64::INFINITY),
        default: "`100`" => 100.0,
        set: f64, unless: |limit: &f64| !limit.is_finite() || *limit < 0.0,
    }
    /// Trace sampling rules, a JSON list of `{service, name, resource, tags, sample_rate, provenance}` (globs with `*` and `?`), first match wins, before `DD_TRACE_SAMPLE_RATE`; a bad rule is left out with a warning.
    trace_sampling_rules: Option<String> {
        env: ["DD_TRACE_SAMPLING_RULES"] => optional(text),
        default: "none" => None,
        set: String => Some,
    }
    /// Single-span sampling rules, a JSON list of `{service, name, sample_rate, max_per_second}`: spans kept from traces sampling dropped.
    span_sampling_rules: Option<String> {
        env: ["DD_SPAN_SAMPLING_RULES"] => optional(text),
        default: "none" => None,
        set: String => Some,
    }
    /// A file holding the single-span sampling rules, read when `DD_SPAN_SAMPLING_RULES` is not set.
    span_sampling_rules_file: Option<String> {
        env: ["DD_SPAN_SAMPLING_RULES_FILE"] => optional(text),
        default: "none" => None,
        set: String => Some,
    }
    /// Debug lines on stderr.
    debug: bool {
        env: ["DD_TRACE_DEBUG"] => flag,
        default: "`false`" => false,
        set: bool,
    }
    /// One configuration line on stderr at start.
    startup_logs: bool {
        env: ["DD_TRACE_STARTUP_LOGS"] => flag,
        default: "`true`" => true,
        set: bool,
    }
    /// Every finished trace drawn as a tree on stderr.
    console: bool {
        env: ["DDSPAN_CONSOLE"] => flag,
        default: "`false`" => false,
        set: bool,
    }
    /// 128-bit trace ids.
    trace_id_128_bit: bool {
        env: ["DD_TRACE_128_BIT_TRACEID_GENERATION_ENABLED"] => flag,
        default: "`true`" => true,
        set: bool,
    }
    /// Big or long-lived traces sent in parts, as their spans finish (ddtrace's default).
    partial_flush_enabled: bool {
        env: ["DD_TRACE_PARTIAL_FLUSH_ENABLED"] => flag,
        default: "`true`" => true,
        set: bool,
    }
    /// The finished spans of a trace that trigger a partial flush, at least 1.
    partial_flush_min_spans: usize {
        env: ["DD_TRACE_PARTIAL_FLUSH_MIN_SPANS"] => count(1, usize::MAX),
        default: "`300`" => 300,
        set: usize => |spans: usize| spans.max(1),
    }
    /// Client-side stats (feature `stats`) when the agent's `/info` lists `/v0.6/stats`; P0 traces are then not sent when it says `client_drop_p0s`.
    ///
    /// Off by default, as in ddtrace: on, sampled-out traces stop reaching the agent.
    stats_computation_enabled: bool {
        env: ["DD_TRACE_STATS_COMPUTATION_ENABLED"] => flag,
        default: "`false`" => false,
        set: bool,
    }
    /// The most aggregation keys of client-side stats per 10 s bucket, at least 1; spans of further keys count under one key per service whose name and resource are `tracer_blocked_value`.
    stats_cardinality_limit: usize {
        env: ["DD_TRACE_STATS_CARDINALITY_LIMIT"] => count(1, usize::MAX),
        default: "`2048`" => 2048,
        set: usize => |keys: usize| keys.max(1),
    }
    /// How often the writer sends: seconds in the variable (at most 3600), at least 1 ms in code.
    flush_interval: Duration {
        env: ["DD_TRACE_WRITER_INTERVAL_SECONDS"] => seconds,
        default: "1 s" => Duration::from_secs(1),
        set: Duration => |every: Duration| clamp_duration(every).max(Duration::from_millis(1)),
    }
    /// A payload is sent when it reaches this size, from 1 KiB to the agent's limit of 25 MiB.
    max_payload_bytes: usize {
        env: ["DD_TRACE_WRITER_MAX_PAYLOAD_SIZE_BYTES"] => count(1024, AGENT_MAX_PAYLOAD_BYTES),
        default: "8 MiB" => 8 * MIB,
        set: usize => |bytes: usize| bytes.clamp(1024, AGENT_MAX_PAYLOAD_BYTES),
    }
    /// The most encoded bytes kept while the agent cannot take them (down, slow or overloaded), at least 1 KiB.
    ///
    /// Further traces are dropped and counted until it can.
    buffer_bytes: usize {
        env: ["DD_TRACE_WRITER_BUFFER_SIZE_BYTES"] => count(1024, usize::MAX),
        default: "20 MiB" => 20 * MIB,
        set: usize => |bytes: usize| bytes.max(1024),
    }
    /// The time limit to connect and write a request to the agent, and to read its answer once begun (its first byte may take at least 10 s).
    request_timeout: Duration {
        env: ["DD_TRACE_AGENT_TIMEOUT_SECONDS"] => seconds,
        default: "2 s" => Duration::from_secs(2),
        set: Duration => clamp_duration,
    }
    /// The propagation styles injected into outgoing headers.
    propagation_inject: Vec<Style> {
        env: ["DD_TRACE_PROPAGATION_STYLE_INJECT", "DD_TRACE_PROPAGATION_STYLE"] => styles,
        default: "`datadog,tracecontext,baggage`" => Style::defaults(),
        set_by: propagation_styles,
    }
    /// The propagation styles extracted from incoming headers.
    propagation_extract: Vec<Style> {
        env: ["DD_TRACE_PROPAGATION_STYLE_EXTRACT", "DD_TRACE_PROPAGATION_STYLE"] => styles,
        default: "`datadog,tracecontext,baggage`" => Style::defaults(),
        set_by: propagation_styles,
    }
    /// The longest `x-datadog-tags` header injected or accepted.
    x_datadog_tags_max_length: usize {
        env: ["DD_TRACE_X_DATADOG_TAGS_MAX_LENGTH"] => count(0, 8192),
        default: "`512`" => 512,
        set: usize => |length: usize| length.min(8192),
    }
    /// The response statuses that mark a server span of the HTTP layers as an error (dd-trace-go's syntax).
    http_server_error_statuses: HttpStatuses {
        env: ["DD_TRACE_HTTP_SERVER_ERROR_STATUSES"] => http::statuses,
        default: "`500-599`" => HttpStatuses::from(500..=599),
        set: HttpStatuses,
    }
    /// The response statuses that mark a client span of the HTTP layers as an error.
    http_client_error_statuses: HttpStatuses {
        env: ["DD_TRACE_HTTP_CLIENT_ERROR_STATUSES"] => http::statuses,
        default: "`400-499`" => HttpStatuses::from(400..=499),
        set: HttpStatuses,
    }
    /// Headers recorded as tags on HTTP spans: `header:tag` pairs, comma separated; a header alone is `http.request.headers.<header>` / `http.response.headers.<header>`.
    header_tags: Vec<HeaderTag> {
        env: ["DD_TRACE_HEADER_TAGS"] => http::header_tags,
        default: "none" => Vec::new(),
        set_by: header_tag,
    }
    /// The finished trace chunks that may wait for the writer; beyond, new ones are dropped and counted.
    ///
    /// 8192 slots take 1 MiB; at 1 M spans/s in ten-span traces, they hold
    /// the 80 ms a slow send may keep the writer before anything is lost.
    queue_capacity: usize {
        default: "`8192`" => 8192,
        set: usize => |chunks: usize| chunks.max(1),
    }
    /// The finished spans those chunks may hold in all.
    ///
    /// 100 000 span records take about 6 MiB: big chunks fill memory long
    /// before 8192 of them are queued. A single chunk bigger than this still
    /// goes when the queue is empty.
    queue_max_spans: usize {
        default: "`100000`" => 100_000,
        set: usize => |spans: usize| spans.max(1),
    }
    /// Retries of a payload after a connection error or a 5xx.
    max_retries: u32 {
        default: "`2`" => 2,
        set: u32,
    }
    /// The first retry's delay; each retry doubles it.
    retry_backoff: Duration {
        default: "100 ms" => Duration::from_millis(100),
        set: Duration => clamp_duration,
    }
    /// How long `tracer::stop()` may take to deliver what is left.
    shutdown_timeout: Duration {
        default: "5 s" => Duration::from_secs(5),
        set: Duration => clamp_duration,
    }
    /// Keeps finished spans in this exporter instead of sending them to an agent (tests of instrumentation).
    memory_exporter: Option<crate::MemoryExporter> {
        default: "none" => None,
        set: crate::MemoryExporter => Some,
    }
}

const MIB: usize = 1024 * 1024;
/// The agent's own request limit.
const AGENT_MAX_PAYLOAD_BYTES: usize = 25 * MIB;
/// The longest duration a setting takes: longer ones (`Duration::MAX`)
/// would overflow the writer's clock arithmetic.
const MAX_SETTING_DURATION: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_UNIX_SOCKET: &str = "/var/run/datadog/apm.socket";
const DEFAULT_AGENT_HOST: &str = "localhost";
const DEFAULT_AGENT_PORT: u16 = 8126;

fn clamp_duration(duration: Duration) -> Duration {
    duration.min(MAX_SETTING_DURATION)
}

fn default_service() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unnamed-rust-service".to_owned())
}

fn default_agent_url() -> AgentUrl {
    if Path::new(DEFAULT_UNIX_SOCKET).exists() {
        AgentUrl::Unix(PathBuf::from(DEFAULT_UNIX_SOCKET))
    } else {
        AgentUrl::Http(format!("http://{DEFAULT_AGENT_HOST}:{DEFAULT_AGENT_PORT}"))
    }
}

impl Config {
    /// A builder whose unset values come from the environment.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::Config;
    ///
    /// let config = Config::builder().service("checkout").env("prod").build();
    /// assert_eq!(config.service(), "checkout");
    /// ```
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The configuration read from the `DD_*` environment variables; each
    /// malformed value is reported once on stderr and replaced by its default.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = ddspan_runtime::Config::from_env();
    /// assert!(!config.service().is_empty());
    /// ```
    pub fn from_env() -> Config {
        Config::builder().build()
    }

    /// The service name of spans that do not set their own.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The `env` tag, if any.
    pub fn env(&self) -> Option<&str> {
        self.env.as_deref()
    }

    /// The `version` tag, if any.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Where traces are sent.
    pub fn agent_url(&self) -> &AgentUrl {
        &self.agent_url
    }

    /// Whether tracing is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The global tags from `DD_TAGS` and the builder.
    pub fn global_tags(&self) -> &[(String, String)] {
        &self.global_tags
    }

    /// The most aggregation keys of client-side stats per 10 s bucket
    /// (`DD_TRACE_STATS_CARDINALITY_LIMIT`); read only with feature `stats`.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = ddspan_runtime::Config::builder().build();
    /// assert_eq!(config.stats_cardinality_limit(), 2048);
    /// ```
    pub fn stats_cardinality_limit(&self) -> usize {
        self.stats_cardinality_limit
    }

    /// The statuses that mark a server span of the HTTP layers as an error.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = ddspan_runtime::Config::builder().build();
    /// assert!(config.http_server_error_statuses().contains(503));
    /// ```
    pub fn http_server_error_statuses(&self) -> &HttpStatuses {
        &self.http_server_error_statuses
    }

    /// The statuses that mark a client span of the HTTP layers as an error.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = ddspan_runtime::Config::builder().build();
    /// assert!(config.http_client_error_statuses().contains(404));
    /// ```
    pub fn http_client_error_statuses(&self) -> &HttpStatuses {
        &self.http_client_error_statuses
    }

    /// The tags a header is recorded as, on requests and on responses, if
    /// it is one of the header tags (`DD_TRACE_HEADER_TAGS`); any case.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = ddspan_runtime::Config::builder().header_tag("X-Tenant", None).build();
    /// assert_eq!(
    ///     config.header_tag("x-tenant"),
    ///     Some(("http.request.headers.x-tenant", "http.response.headers.x-tenant"))
    /// );
    /// ```
    pub fn header_tag(&self, header: &str) -> Option<(&str, &str)> {
        self.header_tags
            .iter()
            .find(|tag| tag.header.eq_ignore_ascii_case(header))
            .map(|tag| (tag.request_tag.as_str(), tag.response_tag.as_str()))
    }
}

/// Sets configuration in code; every value left unset comes from the
/// environment, then from the default.
#[derive(Clone, Debug, Default)]
pub struct ConfigBuilder {
    code: CodeValues,
    /// Added after those of `DD_TAGS`, not instead of them.
    global_tags: Vec<(String, String)>,
}

impl ConfigBuilder {
    /// The propagation styles for injection and extraction; overrides
    /// `DD_TRACE_PROPAGATION_STYLE` and its `_INJECT` and `_EXTRACT` forms
    /// (defaults in [`Config`]'s table).
    pub fn propagation_styles(mut self, styles: &[Style]) -> Self {
        self.code.propagation_inject = Some(styles.to_vec());
        self.code.propagation_extract = Some(styles.to_vec());
        self
    }

    /// Records a header of the HTTP layers' requests and responses as a
    /// tag: `tag`, or with `None` `http.request.headers.<header>` and
    /// `http.response.headers.<header>`. Headers set in code replace those
    /// of `DD_TRACE_HEADER_TAGS`; a name that is not a header's is ignored.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = ddspan_runtime::Config::builder()
    ///     .header_tag("x-request-id", Some("request.id"))
    ///     .header_tag("content-type", None)
    ///     .build();
    /// # drop(config);
    /// ```
    pub fn header_tag(mut self, header: &str, tag: Option<&str>) -> Self {
        let tags = self.code.header_tags.get_or_insert_with(Vec::new);
        if let Some(tag) = HeaderTag::new(header, tag) {
            tags.push(tag);
        }
        self
    }

    /// Adds a tag to every span, after those of `DD_TAGS`.
    pub fn global_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.global_tags.push((key.into(), value.into()));
        self
    }

    /// Resolves the configuration, reading the environment for what is unset
    /// and reporting each malformed variable once on stderr.
    pub fn build(self) -> Config {
        let (config, warnings) = self.build_with(|key| std::env::var(key).ok());
        for warning in warnings {
            crate::util::diagnostics::warn(format_args!("{warning}"));
        }
        config
    }

    /// Resolves against an arbitrary variable lookup; returns the warnings
    /// instead of printing them.
    pub(crate) fn build_with(
        self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> (Config, Vec<String>) {
        let mut env = env::EnvReader::new(&lookup);
        let mut config = resolve(self.code, &mut env);
        config.global_tags.extend(self.global_tags);
        (config, env.into_warnings())
    }
}

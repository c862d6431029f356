//! Tracer configuration: the `DD_*` environment variables, overridden by a
//! builder in code.
//!
//! Every malformed value produces one clear warning and falls back to the
//! default; parsing never panics.

use std::path::PathBuf;

use crate::propagation::Style;
use std::time::Duration;

mod agent_url;

pub use agent_url::{AgentUrl, AgentUrlError, AgentUrlErrorKind};

/// The resolved tracer configuration.
///
/// Build one with [`Config::builder`] (values set in code win over the
/// environment) or [`Config::from_env`].
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `DD_SERVICE` | the executable's name | `service` of every span |
/// | `DD_ENV` | none | meta `env` on every span |
/// | `DD_VERSION` | none | meta `version` on the service's spans |
/// | `DD_TAGS` | none | `k:v,k2:v2` or `k:v k2:v2`, on every span |
/// | `DD_TRACE_AGENT_URL` | | `http://host:port` or `unix:///path` |
/// | `DD_AGENT_HOST` | `localhost` | agent host when no URL is set |
/// | `DD_TRACE_AGENT_PORT` | `8126` | agent port when no URL is set |
/// | `DD_TRACE_ENABLED` | `true` | `false`: spans cost next to nothing, nothing is sent |
/// | `DD_TRACE_SAMPLE_RATE` | none | a rule rate 0..=1 for all traces |
/// | `DD_TRACE_RATE_LIMIT` | `100` | traces per second kept by the rule |
/// | `DD_TRACE_DEBUG` | `false` | debug lines on stderr |
/// | `DD_TRACE_STARTUP_LOGS` | `true` | one configuration line on stderr at start |
/// | `DDSPAN_CONSOLE` | `false` | every finished trace drawn as a tree on stderr |
/// | `DD_TRACE_128_BIT_TRACEID_GENERATION_ENABLED` | `true` | 128-bit trace ids |
/// | `DD_TRACE_PARTIAL_FLUSH_ENABLED` | `false` | send big traces in parts |
/// | `DD_TRACE_PARTIAL_FLUSH_MIN_SPANS` | `1000` | finished spans that trigger a part |
/// | `DD_TRACE_WRITER_INTERVAL_SECONDS` | `1` | how often the writer sends |
/// | `DD_TRACE_WRITER_MAX_PAYLOAD_SIZE_BYTES` | 8 MiB | a payload is sent when it reaches this size |
/// | `DD_TRACE_WRITER_BUFFER_SIZE_BYTES` | 20 MiB | the most encoded bytes kept while the agent is down or slow |
/// | `DD_TRACE_AGENT_TIMEOUT_SECONDS` | `2` | the time limit of one request to the agent |
/// | `DD_TRACE_PROPAGATION_STYLE` (`_INJECT`, `_EXTRACT`) | `datadog,tracecontext,baggage` | propagation styles |
/// | `DD_TRACE_X_DATADOG_TAGS_MAX_LENGTH` | `512` | the longest `x-datadog-tags` injected or accepted |
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) service: String,
    pub(crate) env: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) global_tags: Vec<(String, String)>,
    pub(crate) agent_url: AgentUrl,
    pub(crate) enabled: bool,
    pub(crate) sample_rate: Option<f64>,
    pub(crate) rate_limit: f64,
    pub(crate) debug: bool,
    pub(crate) startup_logs: bool,
    pub(crate) trace_id_128_bit: bool,
    pub(crate) partial_flush_enabled: bool,
    pub(crate) partial_flush_min_spans: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) max_payload_bytes: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) queue_max_spans: usize,
    pub(crate) buffer_bytes: usize,
    pub(crate) request_timeout: Duration,
    pub(crate) max_retries: u32,
    pub(crate) retry_backoff: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) memory_exporter: Option<crate::MemoryExporter>,
    pub(crate) console: bool,
    pub(crate) propagation_inject: Vec<Style>,
    pub(crate) propagation_extract: Vec<Style>,
    pub(crate) x_datadog_tags_max_length: usize,
}

/// The agent's own request limit is 25 MiB; stay well below it.
const DEFAULT_MAX_PAYLOAD_BYTES: usize = 8 * 1024 * 1024;
const AGENT_MAX_PAYLOAD_BYTES: usize = 25 * 1024 * 1024;
/// The longest duration a setting takes: longer ones (`Duration::MAX`)
/// would overflow the writer's clock arithmetic.
const MAX_SETTING_DURATION: Duration = Duration::from_secs(24 * 3600);

fn clamp_duration(duration: Duration) -> Duration {
    duration.min(MAX_SETTING_DURATION)
}

#[cfg(test)]
#[test]
fn durations_set_in_code_are_kept_in_range() {
    let config = Config::builder()
        .flush_interval(Duration::ZERO)
        .shutdown_timeout(Duration::MAX)
        .retry_backoff(Duration::MAX)
        .build();
    assert_eq!(config.flush_interval, Duration::from_millis(1));
    assert_eq!(config.shutdown_timeout, MAX_SETTING_DURATION);
    assert_eq!(config.retry_backoff, MAX_SETTING_DURATION);
}

/// dd-trace-py's default writer buffer.
const DEFAULT_BUFFER_BYTES: usize = 20 * 1024 * 1024;
const DEFAULT_UNIX_SOCKET: &str = "/var/run/datadog/apm.socket";

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
}

/// Sets configuration in code; every value left unset comes from the
/// environment, then from the default.
#[derive(Clone, Debug, Default)]
pub struct ConfigBuilder {
    service: Option<String>,
    env: Option<String>,
    version: Option<String>,
    global_tags: Vec<(String, String)>,
    agent_url: Option<AgentUrl>,
    enabled: Option<bool>,
    sample_rate: Option<f64>,
    rate_limit: Option<f64>,
    debug: Option<bool>,
    console: Option<bool>,
    startup_logs: Option<bool>,
    trace_id_128_bit: Option<bool>,
    partial_flush_enabled: Option<bool>,
    partial_flush_min_spans: Option<usize>,
    flush_interval: Option<Duration>,
    max_payload_bytes: Option<usize>,
    queue_capacity: Option<usize>,
    queue_max_spans: Option<usize>,
    buffer_bytes: Option<usize>,
    request_timeout: Option<Duration>,
    max_retries: Option<u32>,
    retry_backoff: Option<Duration>,
    shutdown_timeout: Option<Duration>,
    memory_exporter: Option<crate::MemoryExporter>,
    propagation_styles: Option<Vec<Style>>,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty $(=> $conv:expr)?;)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<$ty>) -> Self {
            let value: $ty = value.into();
            $(let value = $conv(value);)?
            self.$name = Some(value);
            self
        }
    )*};
}

impl ConfigBuilder {
    setters! {
        /// The service name (`DD_SERVICE`).
        service: String;
        /// The environment (`DD_ENV`).
        env: String;
        /// The application version (`DD_VERSION`).
        version: String;
        /// Where the agent listens (`DD_TRACE_AGENT_URL`).
        agent_url: AgentUrl;
        /// Tracing on or off (`DD_TRACE_ENABLED`).
        enabled: bool;
        /// The rule sample rate, clamped to 0..=1 (`DD_TRACE_SAMPLE_RATE`).
        sample_rate: f64 => |r: f64| if r.is_nan() { 1.0 } else { r.clamp(0.0, 1.0) };
        /// Traces per second the rule may keep (`DD_TRACE_RATE_LIMIT`).
        rate_limit: f64;
        /// Debug lines on stderr (`DD_TRACE_DEBUG`).
        debug: bool;
        /// Every finished trace drawn as a tree on stderr (`DDSPAN_CONSOLE`).
        console: bool;
        /// The configuration line at start (`DD_TRACE_STARTUP_LOGS`).
        startup_logs: bool;
        /// 128-bit trace ids (`DD_TRACE_128_BIT_TRACEID_GENERATION_ENABLED`).
        trace_id_128_bit: bool;
        /// Partial flushes of big traces (`DD_TRACE_PARTIAL_FLUSH_ENABLED`).
        partial_flush_enabled: bool;
        /// Finished spans that trigger a partial flush, at least 1
        /// (`DD_TRACE_PARTIAL_FLUSH_MIN_SPANS`).
        partial_flush_min_spans: usize => |n: usize| n.max(1);
        /// How often the writer sends (`DD_TRACE_WRITER_INTERVAL_SECONDS`).
        flush_interval: Duration => |d: Duration| clamp_duration(d).max(Duration::from_millis(1));
        /// The payload size that triggers an early send
        /// (`DD_TRACE_WRITER_MAX_PAYLOAD_SIZE_BYTES`).
        max_payload_bytes: usize => |n: usize| n.clamp(1024, AGENT_MAX_PAYLOAD_BYTES);
        /// How many finished trace chunks may wait for the writer before new
        /// ones are dropped and counted (default 8192: 1 MiB of queue
        /// slots; at 1 M spans/s in ten-span traces, the 80 ms a slow send
        /// may hold the writer before anything is lost).
        queue_capacity: usize => |n: usize| n.max(1);
        /// How many finished spans those chunks may hold in all (default
        /// 100 000, about 6 MiB of span records): big chunks fill memory
        /// long before 8192 of them are queued. A single chunk bigger than
        /// this still goes when the queue is empty.
        queue_max_spans: usize => |n: usize| n.max(1);
        /// The most bytes of encoded traces the writer keeps while it cannot
        /// deliver them (agent down, slow or overloaded); further traces are
        /// dropped and counted until it can (`DD_TRACE_WRITER_BUFFER_SIZE_BYTES`,
        /// default 20 MiB, at least 1 KiB).
        buffer_bytes: usize => |n: usize| n.max(1024);
        /// The time limit of one request to the agent
        /// (`DD_TRACE_AGENT_TIMEOUT_SECONDS`, default 2 s).
        request_timeout: Duration => clamp_duration;
        /// Retries of a payload after a connection error or a 5xx (default 2).
        max_retries: u32;
        /// The first retry's delay; each retry doubles it (default 100 ms).
        retry_backoff: Duration => clamp_duration;
        /// How long `stop()` may take to deliver what is left (default 5 s).
        shutdown_timeout: Duration => clamp_duration;
    }

    /// Keeps finished spans in this exporter instead of sending them to an
    /// agent (tests of instrumentation).
    pub fn memory_exporter(mut self, exporter: crate::MemoryExporter) -> Self {
        self.memory_exporter = Some(exporter);
        self
    }

    /// The propagation styles for injection and extraction
    /// (`DD_TRACE_PROPAGATION_STYLE`).
    pub fn propagation_styles(mut self, styles: &[Style]) -> Self {
        self.propagation_styles = Some(styles.to_vec());
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
            crate::log::warn(format_args!("{warning}"));
        }
        config
    }

    /// Resolves against an arbitrary variable lookup; returns the warnings
    /// instead of printing them.
    pub(crate) fn build_with(
        self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> (Config, Vec<String>) {
        let mut env = EnvReader {
            lookup: &lookup,
            warnings: Vec::new(),
        };
        let service = self
            .service
            .or_else(|| env.string("DD_SERVICE"))
            .unwrap_or_else(default_service);
        let mut global_tags = env.tags("DD_TAGS");
        global_tags.extend(self.global_tags);
        let agent_url = match self.agent_url {
            Some(url) => url,
            None => env.agent_url(),
        };
        let both = env.style_list("DD_TRACE_PROPAGATION_STYLE");
        let config = Config {
            service,
            env: self.env.or_else(|| env.string("DD_ENV")),
            version: self.version.or_else(|| env.string("DD_VERSION")),
            global_tags,
            agent_url,
            enabled: self
                .enabled
                .unwrap_or_else(|| env.bool("DD_TRACE_ENABLED", true)),
            sample_rate: self.sample_rate.or_else(|| env.sample_rate()),
            rate_limit: self
                .rate_limit
                .filter(|r| r.is_finite() && *r >= 0.0)
                .unwrap_or_else(|| env.non_negative("DD_TRACE_RATE_LIMIT", 100.0)),
            debug: self
                .debug
                .unwrap_or_else(|| env.bool("DD_TRACE_DEBUG", false)),
            startup_logs: self
                .startup_logs
                .unwrap_or_else(|| env.bool("DD_TRACE_STARTUP_LOGS", true)),
            trace_id_128_bit: self
                .trace_id_128_bit
                .unwrap_or_else(|| env.bool("DD_TRACE_128_BIT_TRACEID_GENERATION_ENABLED", true)),
            partial_flush_enabled: self
                .partial_flush_enabled
                .unwrap_or_else(|| env.bool("DD_TRACE_PARTIAL_FLUSH_ENABLED", false)),
            partial_flush_min_spans: self.partial_flush_min_spans.unwrap_or_else(|| {
                env.count("DD_TRACE_PARTIAL_FLUSH_MIN_SPANS", 1000, 1, usize::MAX)
            }),
            flush_interval: self.flush_interval.unwrap_or_else(|| {
                Duration::from_secs_f64(env.positive("DD_TRACE_WRITER_INTERVAL_SECONDS", 1.0))
            }),
            max_payload_bytes: self.max_payload_bytes.unwrap_or_else(|| {
                env.count(
                    "DD_TRACE_WRITER_MAX_PAYLOAD_SIZE_BYTES",
                    DEFAULT_MAX_PAYLOAD_BYTES,
                    1024,
                    AGENT_MAX_PAYLOAD_BYTES,
                )
            }),
            queue_capacity: self.queue_capacity.unwrap_or(8192),
            queue_max_spans: self.queue_max_spans.unwrap_or(100_000),
            buffer_bytes: self.buffer_bytes.unwrap_or_else(|| {
                env.count(
                    "DD_TRACE_WRITER_BUFFER_SIZE_BYTES",
                    DEFAULT_BUFFER_BYTES,
                    1024,
                    usize::MAX,
                )
            }),
            request_timeout: self.request_timeout.unwrap_or_else(|| {
                Duration::from_secs_f64(env.positive("DD_TRACE_AGENT_TIMEOUT_SECONDS", 2.0))
            }),
            max_retries: self.max_retries.unwrap_or(2),
            retry_backoff: self.retry_backoff.unwrap_or(Duration::from_millis(100)),
            shutdown_timeout: self.shutdown_timeout.unwrap_or(Duration::from_secs(5)),
            memory_exporter: self.memory_exporter,
            console: self
                .console
                .unwrap_or_else(|| env.bool("DDSPAN_CONSOLE", false)),
            propagation_inject: self
                .propagation_styles
                .clone()
                .unwrap_or_else(|| env.styles("DD_TRACE_PROPAGATION_STYLE_INJECT", &both)),
            propagation_extract: self
                .propagation_styles
                .unwrap_or_else(|| env.styles("DD_TRACE_PROPAGATION_STYLE_EXTRACT", &both)),
            x_datadog_tags_max_length: env.count(
                "DD_TRACE_X_DATADOG_TAGS_MAX_LENGTH",
                512,
                0,
                8192,
            ),
        };
        (config, env.warnings)
    }
}

fn default_service() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unnamed-rust-service".to_owned())
}

struct EnvReader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    warnings: Vec<String>,
}

impl EnvReader<'_> {
    /// A set, non-blank variable.
    fn string(&mut self, key: &str) -> Option<String> {
        (self.lookup)(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn warn_default(
        &mut self,
        key: &str,
        value: &str,
        expected: &str,
        default: &dyn std::fmt::Display,
    ) {
        self.warnings.push(format!(
            "{key}={value:?} is not {expected}; using the default ({default})"
        ));
    }

    fn bool(&mut self, key: &str, default: bool) -> bool {
        let Some(value) = self.string(key) else {
            return default;
        };
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => {
                self.warn_default(key, &value, "a boolean (true or false)", &default);
                default
            }
        }
    }

    fn number(&mut self, key: &str) -> Option<(String, Option<f64>)> {
        let value = self.string(key)?;
        let parsed = value.parse::<f64>().ok().filter(|n| n.is_finite());
        Some((value, parsed))
    }

    fn non_negative(&mut self, key: &str, default: f64) -> f64 {
        match self.number(key) {
            None => default,
            Some((_, Some(n))) if n >= 0.0 => n,
            Some((value, _)) => {
                self.warn_default(key, &value, "a number >= 0", &default);
                default
            }
        }
    }

    fn positive(&mut self, key: &str, default: f64) -> f64 {
        match self.number(key) {
            None => default,
            Some((_, Some(n))) if n > 0.0 && n <= 3600.0 => n,
            Some((value, _)) => {
                self.warn_default(key, &value, "a number of seconds > 0 and <= 3600", &default);
                default
            }
        }
    }

    fn count(&mut self, key: &str, default: usize, min: usize, max: usize) -> usize {
        let Some(value) = self.string(key) else {
            return default;
        };
        match value.parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                let expected = format!("a whole number from {min} to {max}");
                self.warn_default(key, &value, &expected, &default);
                default
            }
        }
    }

    fn sample_rate(&mut self) -> Option<f64> {
        match self.number("DD_TRACE_SAMPLE_RATE") {
            None => None,
            Some((_, Some(n))) if (0.0..=1.0).contains(&n) => Some(n),
            Some((value, _)) => {
                self.warn_default(
                    "DD_TRACE_SAMPLE_RATE",
                    &value,
                    "a number from 0 to 1",
                    &"no sampling rule",
                );
                None
            }
        }
    }

    /// `DD_TAGS`: `k:v,k2:v2`, or the same separated by spaces.
    fn tags(&mut self, key: &str) -> Vec<(String, String)> {
        let Some(value) = self.string(key) else {
            return Vec::new();
        };
        let items: Vec<&str> = if value.contains(',') {
            value.split(',').collect()
        } else {
            value.split_whitespace().collect()
        };
        let mut tags = Vec::new();
        for item in items.into_iter().map(str::trim).filter(|i| !i.is_empty()) {
            let (k, v) = item.split_once(':').unwrap_or((item, ""));
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() {
                self.warnings
                    .push(format!("{key}: ignoring {item:?}, a tag with no key"));
                continue;
            }
            tags.push((k.to_owned(), v.to_owned()));
        }
        tags
    }

    /// A direction's styles: its own variable, else the shared one (`both`),
    /// else ddtrace's default.
    fn styles(&mut self, direction_key: &str, both: &Option<Vec<Style>>) -> Vec<Style> {
        self.style_list(direction_key)
            .or_else(|| both.clone())
            .unwrap_or_else(Style::defaults)
    }

    fn style_list(&mut self, key: &str) -> Option<Vec<Style>> {
        let value = self.string(key)?;
        let (styles, unknown) = Style::parse_list(&value);
        if !unknown.is_empty() {
            self.warnings.push(format!(
                "{key}: unknown propagation style {unknown:?} ignored (supported: datadog, tracecontext, baggage, none)"
            ));
        }
        Some(styles)
    }

    fn agent_url(&mut self) -> AgentUrl {
        if let Some(url) = self.string("DD_TRACE_AGENT_URL") {
            match AgentUrl::parse(&url) {
                Ok(url) => return url,
                Err(why) => self.warnings.push(format!(
                    "DD_TRACE_AGENT_URL: {why}; using DD_AGENT_HOST and DD_TRACE_AGENT_PORT"
                )),
            }
        }
        let host = self.string("DD_AGENT_HOST");
        let port = match self.string("DD_TRACE_AGENT_PORT") {
            None => None,
            Some(value) => match value.parse::<u16>() {
                Ok(port) if port > 0 => Some(port),
                _ => {
                    self.warn_default("DD_TRACE_AGENT_PORT", &value, "a port number", &8126);
                    None
                }
            },
        };
        if host.is_none() && port.is_none() && std::path::Path::new(DEFAULT_UNIX_SOCKET).exists() {
            return AgentUrl::Unix(PathBuf::from(DEFAULT_UNIX_SOCKET));
        }
        let host = host.unwrap_or_else(|| "localhost".to_owned());
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        AgentUrl::Http(format!("http://{host}:{}", port.unwrap_or(8126)))
    }
}

#[cfg(test)]
mod tests;

use super::*;
use std::collections::HashMap;

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

fn resolve(vars: &[(&str, &str)]) -> (Config, Vec<String>) {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ConfigBuilder::default().build_with(|k| vars.get(k).cloned())
}

#[test]
fn defaults() {
    let (config, warnings) = resolve(&[]);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(config.enabled);
    assert!(!config.service.is_empty());
    assert_eq!(config.env, None);
    assert_eq!(config.sample_rate, None);
    assert_eq!(config.rate_limit, 100.0);
    assert!(config.trace_id_128_bit);
    assert!(config.partial_flush_enabled);
    assert_eq!(config.partial_flush_min_spans, 300);
    assert_eq!(config.flush_interval, Duration::from_secs(1));
    if !std::path::Path::new(DEFAULT_UNIX_SOCKET).exists() {
        assert_eq!(
            config.agent_url,
            AgentUrl::Http("http://localhost:8126".into())
        );
    }
}

#[test]
fn unified_service_tagging() {
    let (config, warnings) = resolve(&[
        ("DD_SERVICE", "checkout"),
        ("DD_ENV", "prod"),
        ("DD_VERSION", "1.2.3"),
        ("DD_TAGS", "team:payments,layer:api, region : eu "),
    ]);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.service, "checkout");
    assert_eq!(config.env.as_deref(), Some("prod"));
    assert_eq!(config.version.as_deref(), Some("1.2.3"));
    assert_eq!(
        config.global_tags,
        vec![
            ("team".into(), "payments".into()),
            ("layer".into(), "api".into()),
            ("region".into(), "eu".into())
        ]
    );
}

#[test]
fn space_separated_tags() {
    let (config, _) = resolve(&[("DD_TAGS", "team:payments  layer:api flag")]);
    assert_eq!(
        config.global_tags,
        vec![
            ("team".into(), "payments".into()),
            ("layer".into(), "api".into()),
            ("flag".into(), String::new())
        ]
    );
}

/// Each malformed variable: exactly one warning that names it, and the default.
#[test]
fn malformed_values_warn_once_and_fall_back() {
    type Holds = fn(&Config) -> bool;
    let cases: &[(&str, &str, Holds)] = &[
        ("DD_TRACE_SAMPLE_RATE", "abc", |c| c.sample_rate.is_none()),
        ("DD_TRACE_SAMPLE_RATE", "1.5", |c| c.sample_rate.is_none()),
        ("DD_TRACE_SAMPLE_RATE", "-0.1", |c| c.sample_rate.is_none()),
        ("DD_TRACE_SAMPLE_RATE", "NaN", |c| c.sample_rate.is_none()),
        ("DD_TRACE_RATE_LIMIT", "fast", |c| c.rate_limit == 100.0),
        ("DD_TRACE_RATE_LIMIT", "-5", |c| c.rate_limit == 100.0),
        ("DD_TRACE_ENABLED", "maybe", |c| c.enabled),
        ("DD_TRACE_DEBUG", "2", |c| !c.debug),
        (
            "DD_TRACE_AGENT_PORT",
            "http",
            |c| matches!(&c.agent_url, AgentUrl::Http(u) if u.ends_with(":8126")),
        ),
        (
            "DD_TRACE_AGENT_PORT",
            "70000",
            |c| matches!(&c.agent_url, AgentUrl::Http(u) if u.ends_with(":8126")),
        ),
        ("DD_TRACE_AGENT_URL", "localhost:8126", |c| {
            matches!(&c.agent_url, AgentUrl::Http(_) | AgentUrl::Unix(_))
        }),
        (
            "DD_TRACE_AGENT_URL",
            "https://agent:8126",
            |c| !matches!(&c.agent_url, AgentUrl::Http(u) if u.starts_with("https")),
        ),
        (
            "DD_TRACE_AGENT_URL",
            "unix://relative",
            |c| !matches!(&c.agent_url, AgentUrl::Unix(p) if p.as_os_str() == "relative"),
        ),
        ("DD_TRACE_PARTIAL_FLUSH_MIN_SPANS", "0", |c| {
            c.partial_flush_min_spans == 300
        }),
        ("DD_TRACE_PARTIAL_FLUSH_MIN_SPANS", "many", |c| {
            c.partial_flush_min_spans == 300
        }),
        ("DD_TRACE_WRITER_INTERVAL_SECONDS", "0", |c| {
            c.flush_interval == Duration::from_secs(1)
        }),
        (
            "DD_TRACE_WRITER_MAX_PAYLOAD_SIZE_BYTES",
            "999999999999",
            |c| c.max_payload_bytes == 8 * 1024 * 1024,
        ),
        (
            "DD_TRACE_128_BIT_TRACEID_GENERATION_ENABLED",
            "yes please",
            |c| c.trace_id_128_bit,
        ),
        ("DD_TAGS", ":orphan", |c| c.global_tags.is_empty()),
        ("DD_TRACE_PROPAGATION_STYLE", "datadog,b3", |c| {
            c.propagation_inject == vec![Style::Datadog]
                && c.propagation_extract == vec![Style::Datadog]
        }),
        ("DD_TRACE_X_DATADOG_TAGS_MAX_LENGTH", "-1", |c| {
            c.x_datadog_tags_max_length == 512
        }),
        ("DD_TRACE_WRITER_BUFFER_SIZE_BYTES", "20MB", |c| {
            c.buffer_bytes == 20 * 1024 * 1024
        }),
        ("DD_TRACE_WRITER_BUFFER_SIZE_BYTES", "10", |c| {
            c.buffer_bytes == 20 * 1024 * 1024
        }),
        ("DD_TRACE_AGENT_TIMEOUT_SECONDS", "-2", |c| {
            c.request_timeout == Duration::from_secs(2)
        }),
        ("DD_TRACE_AGENT_TIMEOUT_SECONDS", "soon", |c| {
            c.request_timeout == Duration::from_secs(2)
        }),
    ];
    for (key, value, holds) in cases {
        let (config, warnings) = resolve(&[(key, value)]);
        assert_eq!(warnings.len(), 1, "{key}={value}: {warnings:?}");
        assert!(warnings[0].contains(key), "{key}={value}: {warnings:?}");
        assert!(
            holds(&config),
            "{key}={value}: wrong fallback in {config:?}"
        );
    }
}

#[test]
fn propagation_styles_per_direction() {
    let (config, warnings) = resolve(&[
        ("DD_TRACE_PROPAGATION_STYLE", "tracecontext"),
        ("DD_TRACE_PROPAGATION_STYLE_INJECT", "Datadog, TraceContext"),
    ]);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        config.propagation_inject,
        vec![Style::Datadog, Style::TraceContext]
    );
    assert_eq!(config.propagation_extract, vec![Style::TraceContext]);
    let (config, _) = resolve(&[("DD_TRACE_PROPAGATION_STYLE", "none")]);
    assert!(config.propagation_inject.is_empty());
    let (config, _) = resolve(&[]);
    assert_eq!(config.propagation_extract, Style::defaults());
}

#[test]
fn agent_url_sources() {
    let (config, _) = resolve(&[("DD_TRACE_AGENT_URL", "unix:///tmp/apm.sock")]);
    assert_eq!(config.agent_url, AgentUrl::Unix("/tmp/apm.sock".into()));
    let (config, _) = resolve(&[
        ("DD_AGENT_HOST", "10.0.0.5"),
        ("DD_TRACE_AGENT_PORT", "9000"),
    ]);
    assert_eq!(
        config.agent_url,
        AgentUrl::Http("http://10.0.0.5:9000".into())
    );
    let (config, _) = resolve(&[("DD_AGENT_HOST", "::1")]);
    assert_eq!(config.agent_url, AgentUrl::Http("http://[::1]:8126".into()));
    let (config, _) = resolve(&[
        ("DD_TRACE_AGENT_URL", "http://127.0.0.1:1234/"),
        ("DD_AGENT_HOST", "ignored"),
    ]);
    assert_eq!(
        config.agent_url,
        AgentUrl::Http("http://127.0.0.1:1234".into())
    );
}

#[test]
fn code_wins_over_environment() {
    let vars: HashMap<&str, &str> =
        HashMap::from([("DD_SERVICE", "from-env"), ("DD_TRACE_SAMPLE_RATE", "0.5")]);
    let (config, _) = Config::builder()
        .service("from-code")
        .sample_rate(0.25)
        .build_with(|k| vars.get(k).map(|v| (*v).to_owned()));
    assert_eq!(config.service, "from-code");
    assert_eq!(config.sample_rate, Some(0.25));
}

/// Found by an adversary: URLs the agent cannot be reached at were taken
/// silently. Each is refused by the parser, and from the environment gives
/// one warning and the default agent.
#[test]
fn agent_urls_with_no_host_a_bad_port_a_path_or_a_query_are_refused() {
    let refused = [
        "http://",
        "http://:8126",
        "http://user:pass@:8126",
        "http://agent:+8126",
        "http://agent:",
        "http://agent:0",
        "http://agent:-1",
        "http://[::1]+8126",
        "http://agent:8126/v0.4/traces",
        "http://agent:8126/prefix/",
        "http://agent:8126?x=1",
        "http://agent?x=1",
        "http://agent:8126/?x=1",
        "http://agent:8126#frag",
        "http://age nt:8126",
        "http://agent\\x:8126",
    ];
    for url in refused {
        assert!(AgentUrl::parse(url).is_err(), "{url} was accepted");
        let (config, warnings) = resolve(&[("DD_TRACE_AGENT_URL", url)]);
        assert_eq!(warnings.len(), 1, "{url}: {warnings:?}");
        assert!(
            warnings[0].contains("DD_TRACE_AGENT_URL"),
            "{url}: {warnings:?}"
        );
        let (default, _) = resolve(&[]);
        assert_eq!(config.agent_url, default.agent_url, "{url}");
    }
    let accepted = [
        ("http://agent", "http://agent"),
        ("http://agent:8126/", "http://agent:8126"),
        ("http://10.0.0.5:1", "http://10.0.0.5:1"),
        ("http://[::1]:8126", "http://[::1]:8126"),
        ("http://[fe80::1%eth0]:8126", "http://[fe80::1%eth0]:8126"),
        (
            "http://dd-agent.internal_1:65535",
            "http://dd-agent.internal_1:65535",
        ),
        ("http://user:pass@agent:8126", "http://user:pass@agent:8126"),
    ];
    for (url, kept) in accepted {
        assert_eq!(
            AgentUrl::parse(url).ok(),
            Some(AgentUrl::Http(kept.into())),
            "{url}"
        );
    }
}

/// `DD_TRACE_AGENT_URL=http://user:pass@host:port` printed the password in
/// the startup line and in every "could not reach the agent" warning: they
/// use `Display`.
#[test]
fn agent_url_display_and_debug_never_show_the_password() {
    let url = AgentUrl::parse("http://user:s3cret@agent:8126").unwrap();
    assert_eq!(url.to_string(), "http://user:***@agent:8126");
    assert!(!format!("{url:?}").contains("s3cret"), "{url:?}");
    assert!(!format!("{url:#?}").contains("s3cret"), "{url:#?}");
    // A lone user name is often a token: hidden whole.
    let token = AgentUrl::Http("http://t0ken@agent:8126".into());
    assert_eq!(token.to_string(), "http://***@agent:8126");
    assert!(!format!("{token:?}").contains("t0ken"));
    // Built by hand with an unescaped `/` in the password.
    let odd = AgentUrl::Http("http://user:pa/ss@agent:8126".into());
    assert!(!odd.to_string().contains("pa/ss"), "{odd}");
    // The parse error shows the URL, redacted too.
    for bad in [
        "http://user:s3cret@:8126",
        "http://user:s3cret@agent:x",
        "user:s3cret@agent:8126",
    ] {
        let error = AgentUrl::parse(bad).unwrap_err();
        assert!(!format!("{error} {error:?}").contains("s3cret"), "{error}");
        let (_, warnings) = resolve(&[("DD_TRACE_AGENT_URL", bad)]);
        assert!(!warnings.concat().contains("s3cret"), "{warnings:?}");
    }
}

#[test]
fn config_debug_never_shows_the_password() {
    let (config, warnings) = resolve(&[("DD_TRACE_AGENT_URL", "http://user:s3cret@agent:8126")]);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(!format!("{config:?}").contains("s3cret"), "{config:?}");
    assert!(!format!("{config:#?}").contains("s3cret"));
    let builder =
        Config::builder().agent_url(AgentUrl::Http("http://user:s3cret@agent:8126".into()));
    assert!(!format!("{builder:?}").contains("s3cret"));
    // The transport still connects with the credentials.
    assert_eq!(
        config.agent_url,
        AgentUrl::Http("http://user:s3cret@agent:8126".into())
    );
}

/// A default's value as the option table shows it; `None` where it depends
/// on the machine (the executable's name, the agent's socket).
pub(crate) trait Shown {
    fn shown(&self) -> Option<String>;
}

impl Shown for bool {
    fn shown(&self) -> Option<String> {
        Some(format!("`{self}`"))
    }
}

impl Shown for usize {
    fn shown(&self) -> Option<String> {
        Some(if *self >= MIB && self % MIB == 0 {
            format!("{} MiB", self / MIB)
        } else {
            format!("`{self}`")
        })
    }
}

impl Shown for u32 {
    fn shown(&self) -> Option<String> {
        Some(format!("`{self}`"))
    }
}

impl Shown for f64 {
    fn shown(&self) -> Option<String> {
        Some(format!("`{self}`"))
    }
}

impl Shown for Duration {
    fn shown(&self) -> Option<String> {
        Some(if self.subsec_nanos() == 0 {
            format!("{} s", self.as_secs())
        } else {
            format!("{} ms", self.as_millis())
        })
    }
}

impl<T: Shown> Shown for Option<T> {
    fn shown(&self) -> Option<String> {
        match self {
            None => Some("none".into()),
            Some(value) => value.shown(),
        }
    }
}

impl Shown for Vec<(String, String)> {
    fn shown(&self) -> Option<String> {
        self.is_empty().then(|| "none".into())
    }
}

impl Shown for Vec<Style> {
    fn shown(&self) -> Option<String> {
        let names: Vec<String> = self
            .iter()
            .map(|style| format!("{style:?}").to_lowercase())
            .collect();
        Some(format!("`{}`", names.join(",")))
    }
}

impl Shown for String {
    fn shown(&self) -> Option<String> {
        None
    }
}

impl Shown for AgentUrl {
    fn shown(&self) -> Option<String> {
        None
    }
}

impl Shown for super::HttpStatuses {
    fn shown(&self) -> Option<String> {
        Some(format!("`{self}`"))
    }
}

impl Shown for Vec<super::HeaderTag> {
    fn shown(&self) -> Option<String> {
        self.is_empty().then(|| "none".into())
    }
}

impl Shown for crate::MemoryExporter {
    fn shown(&self) -> Option<String> {
        None
    }
}

/// The default written in the table (docs, README, warnings) is the value.
#[test]
fn every_default_is_shown_as_it_is() {
    let mut checked = 0;
    for (name, shown, value) in shown_defaults() {
        if let Some(value) = value {
            assert_eq!(shown, value, "the default of `{name}`");
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
}

/// README.md's configuration table is the option table, row for row.
#[test]
fn the_readme_table_is_the_option_table() {
    let (header, rows) = OPTIONS;
    let table = format!("{header}\n{}\n", rows.join("\n"));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let start = readme
        .find(header)
        .expect("README.md has the option table's header");
    let end = readme[start..]
        .find("\n\n")
        .map_or(readme.len(), |i| start + i + 1);
    assert!(
        readme[start..end] == table,
        "README.md's configuration table differs from the options; it should read:\n\n{table}"
    );
}

/// Whatever a variable holds: no panic, and at most one warning, naming it.
#[test]
fn any_value_of_any_variable_gives_at_most_one_warning_naming_it() {
    let values = [
        "garbage%%",
        "-1",
        "+",
        "1e999",
        "NaN",
        "0",
        "\u{0}",
        "http://",
        ":",
        ",,",
        &"9".repeat(400),
    ];
    let (_, rows) = OPTIONS;
    let mut variables = 0;
    for row in rows {
        for var in row.split('|').nth(1).unwrap().split(',') {
            let Some(var) = var.trim().strip_prefix('`') else {
                continue; // set in code only
            };
            let var = var.trim_end_matches('`');
            variables += 1;
            for value in values {
                let (_, warnings) = resolve(&[(var, value)]);
                assert!(warnings.len() <= 1, "{var}={value:?}: {warnings:?}");
                for warning in &warnings {
                    assert!(warning.starts_with(var), "{var}={value:?}: {warning}");
                }
            }
        }
    }
    assert!(variables >= 22, "{variables}");
}

#[test]
fn a_bad_agent_host_warns_and_uses_localhost() {
    for host in ["my agent", "http://agent", "agent/x", "user:s3cret@agent"] {
        let (config, warnings) =
            resolve(&[("DD_AGENT_HOST", host), ("DD_TRACE_AGENT_PORT", "9000")]);
        assert_eq!(warnings.len(), 1, "{host}: {warnings:?}");
        assert!(warnings[0].starts_with("DD_AGENT_HOST"), "{warnings:?}");
        assert!(!warnings[0].contains("s3cret"), "{warnings:?}");
        assert_eq!(
            config.agent_url,
            AgentUrl::Http("http://localhost:9000".into()),
            "{host}"
        );
    }
}

#[test]
fn every_option_with_a_variable_can_be_set_in_code() {
    let (config, _) = Config::builder()
        .x_datadog_tags_max_length(100_000usize)
        .propagation_styles(&[Style::Baggage])
        .build_with(|var| {
            let value = match var {
                "DD_TRACE_X_DATADOG_TAGS_MAX_LENGTH" => "7",
                "DD_TRACE_PROPAGATION_STYLE_INJECT" => "datadog",
                _ => return None,
            };
            Some(value.to_owned())
        });
    assert_eq!(config.x_datadog_tags_max_length, 8192);
    assert_eq!(config.propagation_inject, vec![Style::Baggage]);
    assert_eq!(config.propagation_extract, vec![Style::Baggage]);
}

/// The agent's default depends on the machine (a socket that exists), so
/// `every_default_is_shown_as_it_is` cannot check it: the table names both.
#[test]
fn the_agents_default_is_shown_as_it_is() {
    let (_, shown, _) = shown_defaults()
        .into_iter()
        .find(|(name, _, _)| *name == "agent_url")
        .unwrap();
    let http = format!("`http://{DEFAULT_AGENT_HOST}:{DEFAULT_AGENT_PORT}`");
    let unix = format!("`unix://{DEFAULT_UNIX_SOCKET}`");
    assert!(shown.contains(&http) && shown.contains(&unix), "{shown}");
    let (_, rows) = OPTIONS;
    let row = rows.iter().find(|row| row.contains("`agent_url`")).unwrap();
    let host_and_port = format!("`{DEFAULT_AGENT_HOST}`, `{DEFAULT_AGENT_PORT}` by default");
    assert!(row.contains(&host_and_port), "{row}");
}

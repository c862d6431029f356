//! Reading the environment: the variables' parsers and the warnings for
//! malformed values.

use std::time::Duration;

use super::{AgentUrl, DEFAULT_AGENT_HOST, DEFAULT_AGENT_PORT};
use crate::config::Style;

/// The variables, through a lookup (the process environment, or a map in
/// tests), and the warnings so far.
pub(crate) struct EnvReader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    warnings: Vec<String>,
}

impl<'a> EnvReader<'a> {
    pub(crate) fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> EnvReader<'a> {
        EnvReader {
            lookup,
            warnings: Vec::new(),
        }
    }

    /// A set, non-blank variable, trimmed.
    pub(crate) fn value(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// Adds a warning, once: a variable read for two options (the shared
    /// propagation style) is reported once.
    pub(crate) fn warn(&mut self, warning: String) {
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    pub(crate) fn into_warnings(self) -> Vec<String> {
        self.warnings
    }
}

/// How an option is read from its variables.
pub(crate) trait Read<T> {
    /// The option's value from `vars` (the table's, in order); `None`
    /// leaves it to the default, shown as `shown` in warnings.
    fn read(&self, env: &mut EnvReader<'_>, vars: &[&'static str], shown: &str) -> Option<T>;
}

/// What a parser makes of a variable's value.
pub(crate) type Parsed<T> = Result<T, Bad<T>>;

/// What a parser refuses.
pub(crate) enum Bad<T> {
    /// Not a value of the option: what one looks like. The default is used.
    Expected(String),
    /// Partly usable: the value kept, and what was ignored.
    Ignored(T, String),
}

/// A parser reads the first set variable; the others are still parsed, so
/// that each malformed one is reported.
impl<T, P: Fn(&str) -> Parsed<T>> Read<T> for P {
    fn read(&self, env: &mut EnvReader<'_>, vars: &[&'static str], shown: &str) -> Option<T> {
        let mut first: Option<Option<T>> = None;
        for &var in vars {
            let Some(value) = env.value(var) else {
                continue;
            };
            let parsed = match self(&value) {
                Ok(parsed) => Some(parsed),
                Err(Bad::Expected(what)) => {
                    env.warn(format!(
                        "{var}={value:?} is not {what}; using the default ({})",
                        plain(shown)
                    ));
                    None
                }
                Err(Bad::Ignored(kept, what)) => {
                    env.warn(format!("{var}: {what}"));
                    Some(kept)
                }
            };
            first.get_or_insert(parsed);
        }
        first.flatten()
    }
}

/// A default as shown in the docs, without markdown.
fn plain(shown: &str) -> String {
    shown.replace('`', "")
}

/// Any text.
pub(crate) fn text(value: &str) -> Parsed<String> {
    Ok(value.to_owned())
}

/// `parse`'s value, for an option whose default is none.
pub(crate) fn optional<T>(parse: impl Fn(&str) -> Parsed<T>) -> impl Fn(&str) -> Parsed<Option<T>> {
    move |value| match parse(value) {
        Ok(parsed) => Ok(Some(parsed)),
        Err(Bad::Expected(what)) => Err(Bad::Expected(what)),
        Err(Bad::Ignored(kept, what)) => Err(Bad::Ignored(Some(kept), what)),
    }
}

/// `true`, `1`, `yes`, `on`, or `false`, `0`, `no`, `off`, in any case.
pub(crate) fn flag(value: &str) -> Parsed<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(Bad::Expected("a boolean (true or false)".into())),
    }
}

/// A finite number from `min` to `max`.
pub(crate) fn number(min: f64, max: f64) -> impl Fn(&str) -> Parsed<f64> {
    move |value| match value.parse::<f64>() {
        Ok(n) if n.is_finite() && (min..=max).contains(&n) => Ok(n),
        _ if max == f64::INFINITY => Err(Bad::Expected(format!("a number >= {min}"))),
        _ => Err(Bad::Expected(format!("a number from {min} to {max}"))),
    }
}

/// A number of seconds, more than 0 and at most an hour.
pub(crate) fn seconds(value: &str) -> Parsed<Duration> {
    match value.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 && n <= 3600.0 => Ok(Duration::from_secs_f64(n)),
        _ => Err(Bad::Expected("a number of seconds > 0 and <= 3600".into())),
    }
}

/// A whole number from `min` to `max`.
pub(crate) fn count(min: usize, max: usize) -> impl Fn(&str) -> Parsed<usize> {
    move |value| match value.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Bad::Expected(format!("a whole number from {min} to {max}"))),
    }
}

/// `k:v,k2:v2`, or the same separated by spaces; a tag without a key is
/// ignored.
pub(crate) fn tags(value: &str) -> Parsed<Vec<(String, String)>> {
    let items: Vec<&str> = if value.contains(',') {
        value.split(',').collect()
    } else {
        value.split_whitespace().collect()
    };
    let mut tags = Vec::new();
    let mut keyless = Vec::new();
    for item in items.into_iter().map(str::trim).filter(|i| !i.is_empty()) {
        let (k, v) = item.split_once(':').unwrap_or((item, ""));
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            keyless.push(item);
            continue;
        }
        tags.push((k.to_owned(), v.to_owned()));
    }
    if keyless.is_empty() {
        return Ok(tags);
    }
    let what = format!("ignoring {keyless:?}: tags with no key (expected key:value)");
    Err(Bad::Ignored(tags, what))
}

/// A list of propagation styles; unknown ones are ignored.
pub(crate) fn styles(value: &str) -> Parsed<Vec<Style>> {
    let (styles, unknown) = Style::parse_list(value);
    if unknown.is_empty() {
        return Ok(styles);
    }
    Err(Bad::Ignored(
        styles,
        format!(
            "unknown propagation style {unknown:?} ignored (supported: datadog, tracecontext, baggage, none)"
        ),
    ))
}

/// The agent from the table's three variables: the URL (a malformed one is
/// reported and skipped), else `http://host:port` when either is set, each
/// defaulting to `localhost` and `8126`; else `None`, the default.
pub(crate) struct AgentFromEnv;

impl Read<AgentUrl> for AgentFromEnv {
    fn read(
        &self,
        env: &mut EnvReader<'_>,
        vars: &[&'static str],
        shown: &str,
    ) -> Option<AgentUrl> {
        // The table names them in this order (`agent_url_sources` tests it).
        let &[url_var, host_var, port_var] = vars else {
            return None;
        };
        let url = env.value(url_var).map(|url| url.parse::<AgentUrl>());
        if let Some(Ok(url)) = url {
            return Some(url);
        }
        let from_host_and_port = host_and_port(env, host_var, port_var);
        if let Some(Err(error)) = url {
            let fallback = match &from_host_and_port {
                Some(url) => url.to_string(),
                None => format!("the default, {}", plain(shown)),
            };
            env.warn(format!("{url_var}: {error}; using {fallback}"));
        }
        from_host_and_port
    }
}

/// `http://host:port` when either variable is set (a bad one is reported
/// and replaced by its default).
fn host_and_port(env: &mut EnvReader<'_>, host_var: &str, port_var: &str) -> Option<AgentUrl> {
    let host = env.value(host_var);
    let port = env.value(port_var).and_then(|value| {
        let port = value.parse::<u16>().ok().filter(|&p| p > 0);
        if port.is_none() {
            env.warn(format!(
                "{port_var}={value:?} is not a port number (1 to 65535); using the default ({DEFAULT_AGENT_PORT})"
            ));
        }
        port
    });
    if host.is_none() && port.is_none() {
        return None;
    }
    let port = port.unwrap_or(DEFAULT_AGENT_PORT);
    let url = |host: &str| {
        let bracketed = host.contains(':') && !host.starts_with('[');
        let url = if bracketed {
            format!("http://[{host}]:{port}")
        } else {
            format!("http://{host}:{port}")
        };
        url.parse::<AgentUrl>()
    };
    let host = host.as_deref().unwrap_or(DEFAULT_AGENT_HOST);
    match url(host) {
        Ok(url) => Some(url),
        Err(error) => {
            env.warn(format!(
                "{host_var}: {error}; using the default host ({DEFAULT_AGENT_HOST})"
            ));
            url(DEFAULT_AGENT_HOST).ok()
        }
    }
}

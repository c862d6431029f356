//! Propagation styles as configuration: which header formats a tracer
//! injects and extracts. The codecs themselves live in `propagation/`.

/// A propagation style (the header format of one standard).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Datadog's `x-datadog-*` headers.
    Datadog,
    /// W3C Trace Context: `traceparent` and `tracestate`.
    TraceContext,
    /// W3C Baggage: `baggage`.
    Baggage,
}

impl Style {
    /// Parses a style name as Datadog's tracers spell it.
    pub fn parse(name: &str) -> Option<Style> {
        match name.trim().to_ascii_lowercase().as_str() {
            "datadog" => Some(Style::Datadog),
            "tracecontext" => Some(Style::TraceContext),
            "baggage" => Some(Style::Baggage),
            _ => None,
        }
    }

    /// Parses a comma-separated list; unknown names are returned apart.
    pub(crate) fn parse_list(list: &str) -> (Vec<Style>, Vec<String>) {
        let mut styles = Vec::new();
        let mut unknown = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name.eq_ignore_ascii_case("none") {
                continue;
            }
            match Style::parse(name) {
                Some(style) if !styles.contains(&style) => styles.push(style),
                Some(_) => {}
                None => unknown.push(name.to_owned()),
            }
        }
        (styles, unknown)
    }

    /// ddtrace 4's default, for injection and extraction.
    pub fn defaults() -> Vec<Style> {
        vec![Style::Datadog, Style::TraceContext, Style::Baggage]
    }
}

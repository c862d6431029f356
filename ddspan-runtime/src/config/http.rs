//! The options of the HTTP integrations: which status codes mark a server
//! or client span as an error, and which headers become tags. Their
//! syntax is dd-trace-go's, so one environment serves services in both
//! languages.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use super::env::{Bad, Parsed};

/// A set of HTTP status codes: single codes and inclusive ranges, written
/// as `DD_TRACE_HTTP_SERVER_ERROR_STATUSES` is (`500-599`, `429,500-599`).
///
/// # Examples
///
/// ```
/// use ddspan_runtime::HttpStatuses;
///
/// let statuses: HttpStatuses = "429,500-599".parse().unwrap();
/// assert!(statuses.contains(429) && statuses.contains(503));
/// assert!(!statuses.contains(404));
/// assert_eq!(HttpStatuses::from(400..=499).to_string(), "400-499");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpStatuses {
    ranges: Vec<(u16, u16)>,
}

impl HttpStatuses {
    /// The codes of these ranges.
    ///
    /// # Examples
    ///
    /// ```
    /// let statuses = ddspan_runtime::HttpStatuses::new([404..=404, 500..=599]);
    /// assert!(statuses.contains(404));
    /// ```
    pub fn new(ranges: impl IntoIterator<Item = RangeInclusive<u16>>) -> HttpStatuses {
        HttpStatuses {
            ranges: ranges
                .into_iter()
                .map(|range| (*range.start(), *range.end()))
                .collect(),
        }
    }

    /// Whether `status` is one of the codes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ddspan_runtime::HttpStatuses::from(500..=599).contains(500));
    /// ```
    pub fn contains(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(low, high)| (low..=high).contains(&status))
    }
}

impl From<RangeInclusive<u16>> for HttpStatuses {
    fn from(range: RangeInclusive<u16>) -> HttpStatuses {
        HttpStatuses::new([range])
    }
}

/// What `HttpStatuses::from_str` refuses: the entry that is not a code or
/// a range of codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpStatusesError {
    entry: String,
}

impl fmt::Display for HttpStatusesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a status code (100 to 999) or a range of them (500-599)",
            self.entry
        )
    }
}

impl std::error::Error for HttpStatusesError {}

impl FromStr for HttpStatuses {
    type Err = HttpStatusesError;

    /// Comma-separated codes and `low-high` ranges. As in dd-trace-go, one
    /// bad entry refuses the whole value.
    fn from_str(value: &str) -> Result<HttpStatuses, HttpStatusesError> {
        let code = |text: &str| {
            text.trim()
                .parse::<u16>()
                .ok()
                .filter(|code| (100..=999).contains(code))
        };
        let mut ranges = Vec::new();
        for entry in value.split(',') {
            let range = match entry.split_once('-') {
                Some((low, high)) => code(low).zip(code(high)).filter(|(l, h)| l <= h),
                None => code(entry).map(|c| (c, c)),
            };
            match range {
                Some(range) => ranges.push(range),
                None => {
                    return Err(HttpStatusesError {
                        entry: entry.trim().to_owned(),
                    })
                }
            }
        }
        Ok(HttpStatuses { ranges })
    }
}

impl fmt::Display for HttpStatuses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(low, high)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if low == high {
                write!(f, "{low}")?;
            } else {
                write!(f, "{low}-{high}")?;
            }
        }
        Ok(())
    }
}

/// The variables' parser: a bad value is refused whole (one warning, the
/// default), as dd-trace-go does.
pub(crate) fn statuses(value: &str) -> Parsed<HttpStatuses> {
    value.parse().map_err(|error: HttpStatusesError| {
        Bad::Expected(format!("a list of status codes and ranges ({error})"))
    })
}

/// A header recorded as a tag on HTTP spans (`DD_TRACE_HEADER_TAGS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeaderTag {
    /// The header's name, lower case.
    pub(crate) header: String,
    /// The tag on a request's header: the one named, else
    /// `http.request.headers.<header>`.
    pub(crate) request_tag: String,
    /// The tag on a response's header: the one named, else
    /// `http.response.headers.<header>`.
    pub(crate) response_tag: String,
}

impl HeaderTag {
    /// `header` (any case) as `tag`; with no tag, the default tags of
    /// Datadog's tracers: the name lower-cased, each character other than a
    /// letter, a digit or `-` replaced by `_`. `None` for a name that is not
    /// a header's (empty, or not an HTTP token).
    pub(crate) fn new(header: &str, tag: Option<&str>) -> Option<HeaderTag> {
        let header = header.trim().to_ascii_lowercase();
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if header.is_empty() || !header.chars().all(token) {
            return None;
        }
        let (request_tag, response_tag) = match tag.map(str::trim).filter(|t| !t.is_empty()) {
            Some(tag) => (tag.to_owned(), tag.to_owned()),
            None => {
                let normalized: String = header
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                (
                    format!("http.request.headers.{normalized}"),
                    format!("http.response.headers.{normalized}"),
                )
            }
        };
        Some(HeaderTag {
            header,
            request_tag,
            response_tag,
        })
    }
}

/// `header:tag` pairs, comma separated; a header alone gets the default
/// tags. As dd-trace-go, the last `:` separates the tag. Entries that are
/// not a header name are ignored, with one warning.
pub(crate) fn header_tags(value: &str) -> Parsed<Vec<HeaderTag>> {
    let mut tags = Vec::new();
    let mut ignored = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (header, tag) = match entry.rsplit_once(':') {
            Some((header, tag)) => (header, Some(tag)),
            None => (entry, None),
        };
        match HeaderTag::new(header, tag) {
            Some(tag) => tags.push(tag),
            None => ignored.push(entry),
        }
    }
    if ignored.is_empty() {
        return Ok(tags);
    }
    let what = format!("ignoring {ignored:?}: not a header name (expected header or header:tag)");
    Err(Bad::Ignored(tags, what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_as_dd_trace_go_writes_them() {
        let statuses: HttpStatuses = " 400 , 500-599,404-404".parse().unwrap();
        assert!(statuses.contains(400) && statuses.contains(599) && statuses.contains(404));
        assert!(!statuses.contains(401) && !statuses.contains(600));
        for bad in [
            "",
            "5xx",
            "500-",
            "599-500",
            "500-599-600",
            "70000",
            "42",
            "500,,503",
        ] {
            assert!(bad.parse::<HttpStatuses>().is_err(), "{bad:?}");
        }
        assert_eq!(
            HttpStatuses::new([429..=429, 500..=599]).to_string(),
            "429,500-599"
        );
    }

    #[test]
    fn header_tags_named_or_normalised() {
        let Ok(tags) = header_tags("X-Request-ID:request.id, User-Agent ,x_weird.name") else {
            panic!("parsed");
        };
        assert_eq!(tags[0].header, "x-request-id");
        assert_eq!(tags[0].request_tag, "request.id");
        assert_eq!(tags[0].response_tag, "request.id");
        assert_eq!(tags[1].request_tag, "http.request.headers.user-agent");
        assert_eq!(tags[1].response_tag, "http.response.headers.user-agent");
        assert_eq!(tags[2].request_tag, "http.request.headers.x_weird_name");
        let Err(Bad::Ignored(kept, what)) = header_tags("x-ok, bad header:t, :t") else {
            panic!("a warning");
        };
        assert_eq!(kept.len(), 1);
        assert!(what.contains("bad header:t"), "{what}");
    }

    #[test]
    fn from_the_environment_a_bad_value_warns_once_and_keeps_the_default() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            }
        };
        let (config, warnings) = crate::Config::builder().build_with(env(&[
            ("DD_TRACE_HTTP_SERVER_ERROR_STATUSES", "500-5xx"),
            ("DD_TRACE_HTTP_CLIENT_ERROR_STATUSES", "404,429"),
            (
                "DD_TRACE_HEADER_TAGS",
                "x-request-id:request.id,content-type",
            ),
        ]));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("DD_TRACE_HTTP_SERVER_ERROR_STATUSES"),
            "{warnings:?}"
        );
        assert!(
            warnings[0].contains("500-599"),
            "the default is named: {warnings:?}"
        );
        assert_eq!(
            config.http_server_error_statuses,
            HttpStatuses::from(500..=599)
        );
        assert!(config.http_client_error_statuses.contains(429));
        assert!(!config.http_client_error_statuses.contains(400));
        assert_eq!(config.header_tags.len(), 2);
        let (config, _) = crate::Config::builder()
            .header_tag("X-Tenant", None)
            .http_client_error_statuses(HttpStatuses::new([500..=599]))
            .build_with(env(&[("DD_TRACE_HEADER_TAGS", "x-request-id")]));
        assert_eq!(config.header_tags.len(), 1, "code replaces the environment");
        assert_eq!(
            config.header_tags[0].request_tag,
            "http.request.headers.x-tenant"
        );
        assert!(config.http_client_error_statuses.contains(503));
    }
}

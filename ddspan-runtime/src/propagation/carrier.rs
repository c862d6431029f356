//! Where propagation headers are written to and read from.
//!
//! Header names are matched case-insensitively on extraction. A header that
//! appears twice, or whose value is not UTF-8, is an error for the style
//! that needs it, never a panic.

use std::collections::HashMap;

/// Why a header could not be read; what an [`Extractor`] returns.
/// `#[non_exhaustive]`: a `match` needs a `_` arm.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The header appears more than once.
    Duplicate,
    /// The header's value is not UTF-8.
    NotUtf8,
}

/// Something propagation headers can be written into. Implemented for
/// `HashMap<String, String>`, `Vec<(String, String)>` and (feature `http`)
/// `http::HeaderMap`; implement it for other header types.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{tracer, Injector};
///
/// struct Metadata(Vec<String>);
/// impl Injector for Metadata {
///     fn set(&mut self, name: &str, value: String) {
///         self.0.retain(|line| !line.starts_with(&format!("{name}:")));
///         self.0.push(format!("{name}:{value}"));
///     }
/// }
///
/// let span = tracer::start_span("rpc.client");
/// let mut metadata = Metadata(Vec::new());
/// if let Some(context) = span.context() {
///     tracer::inject(&context, &mut metadata);
/// }
/// ```
pub trait Injector {
    /// Sets a header, replacing any value it had.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use ddspan_runtime::Injector;
    ///
    /// let mut headers: HashMap<String, String> = HashMap::new();
    /// headers.set("x-datadog-origin", "synthetics".to_owned());
    /// assert_eq!(headers["x-datadog-origin"], "synthetics");
    /// ```
    fn set(&mut self, name: &str, value: String);
}

/// Something propagation headers can be read from. Implemented for
/// `HashMap<String, String>`, `[(String, String)]`, `Vec<(String, String)>`
/// and (feature `http`) `http::HeaderMap`; implement it for other header
/// types.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{tracer, Extractor, HeaderError};
///
/// struct Metadata(Vec<(&'static str, String)>);
/// impl Extractor for Metadata {
///     fn get(&self, name: &str) -> Result<Option<&str>, HeaderError> {
///         let mut values = self.0.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name));
///         match (values.next(), values.next()) {
///             (Some(_), Some(_)) => Err(HeaderError::Duplicate),
///             (first, _) => Ok(first.map(|(_, v)| v.as_str())),
///         }
///     }
/// }
///
/// let incoming = Metadata(vec![
///     ("X-Datadog-Trace-Id", "1890081292213679918".to_owned()),
///     ("X-Datadog-Parent-Id", "7628922200302827473".to_owned()),
/// ]);
/// let _span = tracer::span("rpc.server").child_of(tracer::extract(&incoming).ok()).start();
/// ```
pub trait Extractor {
    /// The value of a header, matched without regard to case.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::Extractor;
    ///
    /// let headers = vec![("TraceParent".to_owned(), "00-...".to_owned())];
    /// assert_eq!(headers.get("traceparent"), Ok(Some("00-...")));
    /// ```
    fn get(&self, name: &str) -> Result<Option<&str>, HeaderError>;

    /// Every value of a header, in order: a header whose value is a list
    /// (`tracestate`, `baggage`) may come as several fields, one list. By
    /// default the one value [`Extractor::get`] finds; carriers that hold
    /// repeated fields return them all.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::Extractor;
    ///
    /// let headers = vec![
    ///     ("tracestate".to_owned(), "a=1".to_owned()),
    ///     ("TraceState".to_owned(), "b=2".to_owned()),
    /// ];
    /// assert_eq!(headers.get_all("tracestate"), Ok(vec!["a=1", "b=2"]));
    /// ```
    fn get_all(&self, name: &str) -> Result<Vec<&str>, HeaderError> {
        Ok(self.get(name)?.into_iter().collect())
    }
}

fn unique<'a>(mut values: impl Iterator<Item = &'a str>) -> Result<Option<&'a str>, HeaderError> {
    let first = values.next();
    if first.is_some() && values.next().is_some() {
        return Err(HeaderError::Duplicate);
    }
    Ok(first)
}

impl Injector for HashMap<String, String> {
    fn set(&mut self, name: &str, value: String) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(name));
        self.insert(name.to_owned(), value);
    }
}

impl Extractor for HashMap<String, String> {
    fn get(&self, name: &str) -> Result<Option<&str>, HeaderError> {
        unique(
            self.iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
        )
    }

    fn get_all(&self, name: &str) -> Result<Vec<&str>, HeaderError> {
        // Keys differing only in case: in no order a map keeps.
        Ok(self
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect())
    }
}

impl Injector for Vec<(String, String)> {
    fn set(&mut self, name: &str, value: String) {
        self.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.push((name.to_owned(), value));
    }
}

impl Extractor for Vec<(String, String)> {
    fn get(&self, name: &str) -> Result<Option<&str>, HeaderError> {
        Extractor::get(self.as_slice(), name)
    }

    fn get_all(&self, name: &str) -> Result<Vec<&str>, HeaderError> {
        Extractor::get_all(self.as_slice(), name)
    }
}

impl Extractor for [(String, String)] {
    fn get(&self, name: &str) -> Result<Option<&str>, HeaderError> {
        unique(
            self.iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
        )
    }

    fn get_all(&self, name: &str) -> Result<Vec<&str>, HeaderError> {
        Ok(self
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect())
    }
}

#[cfg(feature = "http")]
impl Injector for http::HeaderMap {
    fn set(&mut self, name: &str, value: String) {
        let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(name.as_bytes()),
            http::header::HeaderValue::from_str(&value),
        ) else {
            crate::util::diagnostics::debug(format_args!(
                "not a valid header, not injected: {name}"
            ));
            return;
        };
        self.insert(name, value);
    }
}

#[cfg(feature = "http")]
impl Extractor for http::HeaderMap {
    fn get(&self, name: &str) -> Result<Option<&str>, HeaderError> {
        let mut values = self.get_all(name).iter();
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(HeaderError::Duplicate);
        }
        first.to_str().map(Some).map_err(|_| HeaderError::NotUtf8)
    }

    fn get_all(&self, name: &str) -> Result<Vec<&str>, HeaderError> {
        http::HeaderMap::get_all(self, name)
            .iter()
            .map(|v| v.to_str().map_err(|_| HeaderError::NotUtf8))
            .collect()
    }
}

//! Where propagation headers are written to and read from.
//!
//! Header names are matched case-insensitively on extraction. A header that
//! appears twice, or whose value is not UTF-8, is an error for the style
//! that needs it, never a panic.

use std::collections::HashMap;

/// Why a header could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The header appears more than once.
    Duplicate,
    /// The header's value is not UTF-8.
    NotUtf8,
}

/// Something propagation headers can be written into.
pub trait Injector {
    /// Sets a header, replacing any value it had.
    fn set(&mut self, name: &str, value: String);
}

/// Something propagation headers can be read from.
pub trait Extractor {
    /// The value of a header, matched without regard to case.
    fn get(&self, name: &str) -> Result<Option<&str>, HeaderError>;
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
}

impl Extractor for [(String, String)] {
    fn get(&self, name: &str) -> Result<Option<&str>, HeaderError> {
        unique(
            self.iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
        )
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
}

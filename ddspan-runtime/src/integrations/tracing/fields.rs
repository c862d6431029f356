//! What the fields of a `tracing` span (and of an `ERROR` event) become on
//! its Datadog span: the overrides of its Datadog fields, tags, and errors.
//!
//! | field | becomes |
//! |---|---|
//! | `otel.name`, `dd.name`, `operation.name` | the operation name |
//! | `dd.resource`, `resource.name` | the resource |
//! | `dd.service`, `service.name` | the service |
//! | `dd.type`, `span.type` | the span type |
//! | `otel.kind`, `span.kind` | meta `span.kind`, lower case |
//! | `otel.status_code` | `error` (`ERROR`) or no error (`OK`), any case |
//! | `otel.status_description` | `error.message` of a span marked by `otel.status_code` |
//! | `error` | `error` with `error.message` (a string, `%`, `?` or `&dyn Error` value); `true`/`false` set or clear `error` alone |
//! | any other integer, float or bool | `metrics` (bools as 1 / 0) |
//! | any other string, `%` or `?` value | `meta` |
//!
//! `operation.name`, `resource.name`, `service.name` and `span.type` are
//! the attributes Datadog's OpenTelemetry mapping reads; `otel.*` are what
//! `tracing-opentelemetry` users write.

use std::borrow::Cow;

use tracing::field::{Field, Visit};

use crate::record::SpanRecord;
use crate::TagValue;

/// What a field names.
enum Key {
    Name,
    Resource,
    Service,
    SpanType,
    Kind,
    Status,
    StatusDescription,
    Error,
    Tag(&'static str),
}

fn key_of(field: &Field) -> Key {
    match field.name() {
        "otel.name" | "dd.name" | "operation.name" => Key::Name,
        "dd.resource" | "resource.name" => Key::Resource,
        "dd.service" | "service.name" => Key::Service,
        "dd.type" | "span.type" => Key::SpanType,
        "otel.kind" | "span.kind" => Key::Kind,
        "otel.status_code" => Key::Status,
        "otel.status_description" => Key::StatusDescription,
        "error" => Key::Error,
        other => Key::Tag(other),
    }
}

/// An `error` field's or `otel.status_code`'s verdict.
#[derive(Debug, PartialEq)]
enum ErrorMark {
    /// Marked, with this message if one was given.
    Set(Option<String>),
    /// Not an error (`error = false`, `otel.status_code = "OK"`).
    Clear,
}

/// The fields of one `tracing` span record (`new_span` or `record`), read
/// once and then applied to the span's record under one lock: no user
/// `Debug` or `Display` code runs while the span is locked.
#[derive(Default)]
pub(super) struct Fields {
    pub(super) name: Option<Cow<'static, str>>,
    pub(super) resource: Option<Cow<'static, str>>,
    pub(super) service: Option<Cow<'static, str>>,
    pub(super) span_type: Option<Cow<'static, str>>,
    error: Option<ErrorMark>,
    status_description: Option<String>,
    tags: Vec<(Cow<'static, str>, TagValue)>,
}

impl Fields {
    /// An error with this message (an `ERROR` event's `error` field).
    pub(super) fn error(message: String) -> Fields {
        Fields {
            error: Some(ErrorMark::Set(Some(message))),
            ..Fields::default()
        }
    }

    /// Whether there is anything left for [`Fields::apply`].
    pub(super) fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.resource.is_none()
            && self.service.is_none()
            && self.span_type.is_none()
            && self.error.is_none()
            && self.tags.is_empty()
    }

    /// Writes everything still held into `record`.
    pub(super) fn apply(self, record: &mut SpanRecord) {
        if let Some(name) = self.name {
            record.set_name(name);
        }
        if let Some(resource) = self.resource {
            record.set_resource(resource);
        }
        if let Some(service) = self.service {
            record.set_service(service);
        }
        if let Some(span_type) = self.span_type {
            record.set_span_type(span_type);
        }
        for (key, value) in self.tags {
            record.set_tag(key, value);
        }
        match self.error {
            Some(ErrorMark::Set(message)) => {
                record.error = true;
                if let Some(message) = message.or(self.status_description) {
                    record.set_tag(Cow::Borrowed("error.message"), TagValue::from(message));
                }
            }
            Some(ErrorMark::Clear) => record.error = false,
            None => {}
        }
    }

    /// A string value (from `record_str`, or `Display`/`Debug` formatted).
    fn text(&mut self, field: &Field, value: Cow<'_, str>) {
        match key_of(field) {
            Key::Name => self.name = Some(Cow::Owned(value.into_owned())),
            Key::Resource => self.resource = Some(Cow::Owned(value.into_owned())),
            Key::Service => self.service = Some(Cow::Owned(value.into_owned())),
            Key::SpanType => self.span_type = Some(Cow::Owned(value.into_owned())),
            Key::Kind => self
                .tags
                .push((Cow::Borrowed("span.kind"), kind(&value).into())),
            Key::Status => {
                if value.eq_ignore_ascii_case("error") {
                    self.error = Some(ErrorMark::Set(None));
                } else if value.eq_ignore_ascii_case("ok") {
                    self.error = Some(ErrorMark::Clear);
                }
            }
            Key::StatusDescription => self.status_description = Some(value.into_owned()),
            Key::Error => self.error = Some(ErrorMark::Set(Some(value.into_owned()))),
            Key::Tag(key) => self
                .tags
                .push((Cow::Borrowed(key), TagValue::from(value.into_owned()))),
        }
    }

    /// A number or boolean value: a metric, or a string where a string is
    /// expected.
    fn number(&mut self, field: &Field, value: TagValue, text: impl FnOnce() -> String) {
        match key_of(field) {
            Key::Tag(key) => self.tags.push((Cow::Borrowed(key), value)),
            _ => self.text(field, Cow::Owned(text())),
        }
    }
}

/// `otel.kind` values as Datadog writes `span.kind`: lower case.
fn kind(value: &str) -> Cow<'static, str> {
    for known in ["server", "client", "producer", "consumer", "internal"] {
        if value.eq_ignore_ascii_case(known) {
            return Cow::Borrowed(known);
        }
    }
    Cow::Owned(value.to_ascii_lowercase())
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, Cow::Borrowed(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.text(field, Cow::Owned(crate::util::safe_display::debug(value)));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, Cow::Owned(crate::util::safe_display::display(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value.into(), || value.to_string());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value.into(), || value.to_string());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.number(field, value.into(), || value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        match key_of(field) {
            Key::Error => {
                self.error = Some(if value {
                    ErrorMark::Set(None)
                } else {
                    ErrorMark::Clear
                });
            }
            _ => self.number(field, value.into(), || value.to_string()),
        }
    }
}

/// The `error` field of an event (what `#[instrument(err)]` logs), if it
/// has one.
#[derive(Default)]
pub(super) struct EventError(pub(super) Option<String>);

impl Visit for EventError {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "error" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "error" {
            self.0 = Some(crate::util::safe_display::debug(value));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if field.name() == "error" {
            self.0 = Some(crate::util::safe_display::display(value));
        }
    }
}

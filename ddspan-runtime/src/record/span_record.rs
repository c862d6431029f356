//! A span's data, from its start until the writer encodes it.

use std::borrow::Cow;
use std::cell::RefCell;

use crate::record::link::{Event, Link, LinksAndEvents};
use crate::record::reuse_budget;
use crate::record::spec::SpanSpec;
use crate::record::tag::{self, TagValue, MAX_TAGS_PER_SPAN, MAX_TAG_KEY_LEN, MAX_TAG_VALUE_LEN};
use crate::util::clock::Instant;

/// One span, in 64 bytes: what is known at compile time stays behind a
/// `&'static SpanSpec`, and anything set at run time lives in a box that
/// spans without dynamic data never allocate. Finished spans are moved a few
/// times on their way to the writer, so small records matter.
/// The trace id and sampling decision live once per trace in
/// [`crate::trace::TraceShared`].
#[derive(Debug)]
pub(crate) struct SpanRecord {
    pub(crate) span_id: u64,
    pub(crate) parent_id: u64,
    /// Nanoseconds since the unix epoch (a span clock reading, or an
    /// explicit start time).
    pub(crate) start: u64,
    pub(crate) duration_ns: u64,
    pub(crate) spec: &'static SpanSpec,
    extra: Option<Box<SpanExtra>>,
    pub(crate) error: bool,
    /// A service entry span: the local root, or a span whose service differs
    /// from its parent's. Computed at start, so partial flushes agree.
    pub(crate) top_level: bool,
}

/// What a span sets at run time.
#[derive(Debug, Default)]
struct SpanExtra {
    name: Option<Cow<'static, str>>,
    resource: Option<Cow<'static, str>>,
    service: Option<Cow<'static, str>>,
    span_type: Option<Cow<'static, str>>,
    meta: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    metrics: Vec<(Cow<'static, str>, f64)>,
    /// Tags that did not fit under [`MAX_TAGS_PER_SPAN`] (and links,
    /// events and their attributes that did not fit under theirs).
    tags_dropped: u32,
    /// Span links and events: one more box, as few spans have them.
    links_events: Option<Box<LinksAndEvents>>,
}

/// The spec of spans whose every field is set at run time.
pub(crate) static DYNAMIC: SpanSpec = SpanSpec::new("");

/// Emptied [`SpanExtra`]s a thread keeps for its next spans with tags or
/// errors: the box and its tag vectors' room are reused instead of freed
/// and allocated again. Freed in bursts (a whole buffer of finished spans
/// at once), they overflowed the allocator's per-thread cache and took its
/// locked slow path: more than half of an `Err` span's cost.
/// As many as a partial flush's worth of spans (1000 by default), so a
/// whole returned buffer is reused; at most about 400 KiB a thread with
/// [`SpanExtra::clear`]'s bound on kept room.
const MAX_SPARE_EXTRAS: usize = 1024;

/// A thread's emptied extras and what they hold of the process's reuse
/// budget.
struct SpareExtras {
    // The boxes are what is reused: a record takes one back as it is.
    #[allow(clippy::vec_box)]
    extras: Vec<Box<SpanExtra>>,
    budget: reuse_budget::Reservation,
}

thread_local! {
    static SPARE_EXTRAS: RefCell<SpareExtras> = const {
        RefCell::new(SpareExtras {
            extras: Vec::new(),
            budget: reuse_budget::Reservation::new(),
        })
    };
}

fn spare_extra() -> Box<SpanExtra> {
    SPARE_EXTRAS
        .try_with(|spare| {
            let mut spare = spare.try_borrow_mut().ok()?;
            let extra = spare.extras.pop()?;
            spare.budget.release(extra.kept_bytes());
            Some(extra)
        })
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Empties `records`, keeping their run-time data's allocations for reuse
/// on this thread (up to a bound).
pub(crate) fn recycle(records: &mut Vec<SpanRecord>) {
    let _ = SPARE_EXTRAS.try_with(|spare| {
        let Ok(mut spare) = spare.try_borrow_mut() else {
            return;
        };
        let spare = &mut *spare;
        for record in records.iter_mut() {
            if spare.extras.len() >= MAX_SPARE_EXTRAS {
                break;
            }
            if let Some(mut extra) = record.extra.take() {
                extra.clear();
                // Over this thread's share of the process's budget: freed.
                if spare.budget.keep(extra.kept_bytes()) {
                    spare.extras.push(extra);
                }
            }
        }
    });
    records.clear();
}

impl SpanExtra {
    /// The heap memory this extra holds: the box, its vectors' room and the
    /// strings it owns. Out of line, so that [`SpanRecord::retained_bytes`]
    /// of a span without one (the child span's case, summed over every
    /// recycled buffer) stays a null check inlined into its caller.
    #[inline(never)]
    fn heap_bytes(&self) -> usize {
        #[allow(clippy::ptr_arg)] // whether it is owned is the question
        fn owned(text: &Cow<'static, str>) -> usize {
            match text {
                Cow::Owned(text) => text.capacity(),
                Cow::Borrowed(_) => 0,
            }
        }
        let fields = [&self.name, &self.resource, &self.service, &self.span_type]
            .into_iter()
            .flatten()
            .map(owned)
            .sum::<usize>();
        let meta: usize = self.meta.iter().map(|(k, v)| owned(k) + owned(v)).sum();
        let metrics: usize = self.metrics.iter().map(|(k, _)| owned(k)).sum();
        let links_events = self.links_events.as_ref().map_or(0, |l| l.heap_bytes());
        self.kept_bytes() + fields + meta + metrics + links_events
    }

    /// The memory an emptied extra keeps: the box and its vectors' room.
    fn kept_bytes(&self) -> usize {
        std::mem::size_of::<SpanExtra>()
            + self.meta.capacity() * std::mem::size_of::<(Cow<'static, str>, Cow<'static, str>)>()
            + self.metrics.capacity() * std::mem::size_of::<(Cow<'static, str>, f64)>()
    }

    /// Back to empty, keeping the vectors' room (up to a bound, so one
    /// span with many tags does not pin its memory).
    fn clear(&mut self) {
        const KEPT_ROOM: usize = 4;
        let SpanExtra {
            name,
            resource,
            service,
            span_type,
            meta,
            metrics,
            tags_dropped,
            links_events,
        } = self;
        for field in [name, resource, service, span_type] {
            *field = None;
        }
        meta.clear();
        meta.shrink_to(KEPT_ROOM);
        metrics.clear();
        metrics.shrink_to(KEPT_ROOM);
        *tags_dropped = 0;
        *links_events = None;
    }
}

impl SpanRecord {
    /// The heap memory this record holds besides itself (its run-time data),
    /// for the bounds on what is kept for reuse.
    #[inline]
    pub(crate) fn retained_bytes(&self) -> usize {
        self.extra.as_ref().map_or(0, |extra| extra.heap_bytes())
    }

    #[cfg(any(test, feature = "__bench"))]
    pub(crate) fn new(span_id: u64, parent_id: u64, spec: &'static SpanSpec) -> SpanRecord {
        SpanRecord::starting_at(span_id, parent_id, spec, crate::util::clock::now())
    }

    /// A span that started at `start` (a reading the caller already has).
    #[inline]
    pub(crate) fn starting_at(
        span_id: u64,
        parent_id: u64,
        spec: &'static SpanSpec,
        start: Instant,
    ) -> SpanRecord {
        SpanRecord {
            span_id,
            parent_id,
            start: start.0,
            duration_ns: 0,
            spec,
            extra: None,
            error: false,
            top_level: false,
        }
    }

    /// A span whose name is set at run time (unit tests).
    #[cfg(test)]
    pub(crate) fn named(span_id: u64, parent_id: u64, name: Cow<'static, str>) -> SpanRecord {
        SpanRecord::named_at(span_id, parent_id, name, crate::util::clock::now())
    }

    /// A span whose name is set at run time, started at `start`.
    pub(crate) fn named_at(
        span_id: u64,
        parent_id: u64,
        name: Cow<'static, str>,
        start: Instant,
    ) -> SpanRecord {
        let mut record = SpanRecord::starting_at(span_id, parent_id, &DYNAMIC, start);
        record.extra_mut().name = Some(name);
        record
    }

    fn extra_mut(&mut self) -> &mut SpanExtra {
        self.extra.get_or_insert_with(spare_extra)
    }

    pub(crate) fn name(&self) -> &str {
        self.extra
            .as_ref()
            .and_then(|e| e.name.as_deref())
            .unwrap_or(self.spec.name)
    }

    pub(crate) fn resource(&self) -> Option<&str> {
        self.extra
            .as_ref()
            .and_then(|e| e.resource.as_deref())
            .or(self.spec.resource)
    }

    /// The span's service; `None` is the tracer's configured service.
    pub(crate) fn service(&self) -> Option<&str> {
        self.extra
            .as_ref()
            .and_then(|e| e.service.as_deref())
            .or(self.spec.service)
    }

    pub(crate) fn span_type(&self) -> Option<&str> {
        self.extra
            .as_ref()
            .and_then(|e| e.span_type.as_deref())
            .or(self.spec.span_type)
    }

    pub(crate) fn meta(&self) -> &[(Cow<'static, str>, Cow<'static, str>)] {
        self.extra.as_ref().map_or(&[], |e| &e.meta)
    }

    pub(crate) fn metrics(&self) -> &[(Cow<'static, str>, f64)] {
        self.extra.as_ref().map_or(&[], |e| &e.metrics)
    }

    pub(crate) fn tags_dropped(&self) -> u32 {
        self.extra.as_ref().map_or(0, |e| e.tags_dropped)
    }

    /// The span's links.
    pub(crate) fn links(&self) -> &[Link] {
        self.extra
            .as_ref()
            .and_then(|e| e.links_events.as_deref())
            .map_or(&[], |l| &l.links)
    }

    /// The span's events.
    pub(crate) fn events(&self) -> &[Event] {
        self.extra
            .as_ref()
            .and_then(|e| e.links_events.as_deref())
            .map_or(&[], |l| &l.events)
    }

    /// Adds a link (and counts what its attributes left out); past
    /// [`crate::record::link::MAX_LINKS`] it is counted as dropped.
    pub(crate) fn add_link(&mut self, link: Link, attributes_dropped: u32) {
        let extra = self.extra_mut();
        let kept = extra
            .links_events
            .get_or_insert_with(Box::default)
            .add_link(link);
        extra.tags_dropped = extra
            .tags_dropped
            .saturating_add(attributes_dropped + u32::from(!kept));
    }

    /// Adds an event, as [`SpanRecord::add_link`] does a link.
    pub(crate) fn add_event(&mut self, event: Event, attributes_dropped: u32) {
        let extra = self.extra_mut();
        let kept = extra
            .links_events
            .get_or_insert_with(Box::default)
            .add_event(event);
        extra.tags_dropped = extra
            .tags_dropped
            .saturating_add(attributes_dropped + u32::from(!kept));
    }

    pub(crate) fn set_resource(&mut self, resource: Cow<'static, str>) {
        self.extra_mut().resource = Some(resource);
    }

    pub(crate) fn set_service(&mut self, service: Cow<'static, str>) {
        self.extra_mut().service = Some(service);
    }

    pub(crate) fn set_span_type(&mut self, span_type: Cow<'static, str>) {
        self.extra_mut().span_type = Some(span_type);
    }

    /// Stamps the duration; a span that ends before it starts lasts 0 ns.
    pub(crate) fn finish(&mut self, end: Instant) {
        self.finish_at_unix(end.0);
    }

    /// Stamps the duration from an end in nanoseconds since the unix epoch.
    pub(crate) fn finish_at_unix(&mut self, end_unix_ns: u64) {
        self.duration_ns = end_unix_ns.saturating_sub(self.start);
    }

    /// Sets a tag: strings to `meta`, numbers to `metrics`. A key set again
    /// replaces its earlier value in either map.
    pub(crate) fn set_tag(&mut self, key: Cow<'static, str>, value: TagValue) {
        let key = tag::bound(key, MAX_TAG_KEY_LEN);
        let extra = self.extra_mut();
        extra.meta.retain(|(k, _)| *k != key);
        extra.metrics.retain(|(k, _)| *k != key);
        if extra.meta.len() + extra.metrics.len() >= MAX_TAGS_PER_SPAN {
            extra.tags_dropped = extra.tags_dropped.saturating_add(1);
            return;
        }
        match value {
            TagValue::Str(value) => extra.meta.push((key, tag::bound(value, MAX_TAG_VALUE_LEN))),
            // A string in `meta`, as Datadog's tracers send it.
            TagValue::Number(value) if key == tag::HTTP_STATUS_CODE => {
                extra.meta.push((key, Cow::Owned(tag::number_text(value))));
            }
            TagValue::Number(value) => extra.metrics.push((key, value)),
        }
    }

    /// Marks the span as an error with Datadog's error fields.
    pub(crate) fn set_error_fields(
        &mut self,
        message: String,
        error_type: Cow<'static, str>,
        stack: Option<String>,
    ) {
        self.error = true;
        self.set_tag(Cow::Borrowed("error.message"), TagValue::from(message));
        self.set_tag(Cow::Borrowed("error.type"), TagValue::from(error_type));
        if let Some(stack) = stack {
            self.set_tag(Cow::Borrowed("error.stack"), TagValue::from(stack));
        }
    }

    /// Names a running span: a span on a thread's stack started by
    /// `tracer::trace`, and the `tracing` bridge's `otel.name` field
    /// recorded after the span started.
    pub(crate) fn set_name(&mut self, name: Cow<'static, str>) {
        self.extra_mut().name = Some(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_replace_across_meta_and_metrics() {
        let mut record = SpanRecord::named(1, 0, Cow::Borrowed("op"));
        record.set_tag("k".into(), TagValue::from("text"));
        record.set_tag("k".into(), TagValue::from(3));
        assert!(record.meta().is_empty());
        assert_eq!(record.metrics(), &[("k".into(), 3.0)]);
    }

    #[test]
    fn http_status_codes_are_strings() {
        let mut record = SpanRecord::named(1, 0, Cow::Borrowed("op"));
        record.set_tag("http.status_code".into(), TagValue::from(200));
        record.set_tag("out.port".into(), TagValue::from(8126));
        assert_eq!(record.meta(), &[("http.status_code".into(), "200".into())]);
        assert_eq!(record.metrics(), &[("out.port".into(), 8126.0)]);
        assert_eq!(tag::number_text(2.5), "2.5");
    }

    #[test]
    fn tag_count_is_bounded() {
        let mut record = SpanRecord::named(1, 0, Cow::Borrowed("op"));
        for i in 0..MAX_TAGS_PER_SPAN + 5 {
            record.set_tag(format!("k{i}").into(), TagValue::from(1));
        }
        assert_eq!(record.metrics().len(), MAX_TAGS_PER_SPAN);
        assert_eq!(record.tags_dropped(), 5);
    }

    #[test]
    fn recycled_extras_come_back_empty() {
        let mut records: Vec<SpanRecord> = (0..3)
            .map(|i| {
                let mut record = SpanRecord::named(i + 1, 0, Cow::Owned(format!("op{i}")));
                record.set_resource("r".into());
                record.set_tag("k".into(), TagValue::from("v"));
                record.set_tag("n".into(), TagValue::from(1));
                record
            })
            .collect();
        recycle(&mut records);
        assert!(records.is_empty());
        for _ in 0..3 {
            let mut record = SpanRecord::new(9, 0, &DYNAMIC);
            record.set_tag("fresh".into(), TagValue::from("yes"));
            assert_eq!(record.meta(), &[("fresh".into(), "yes".into())]);
            assert!(record.metrics().is_empty());
            assert_eq!((record.name(), record.resource()), ("", None));
            assert_eq!(record.tags_dropped(), 0);
        }
    }

    #[test]
    fn records_stay_small() {
        assert!(
            std::mem::size_of::<SpanRecord>() <= 64,
            "{}",
            std::mem::size_of::<SpanRecord>()
        );
    }

    #[test]
    fn static_spans_allocate_nothing_extra() {
        static SPEC: SpanSpec = SpanSpec::new("op").with_resource("r");
        let record = SpanRecord::new(1, 0, &SPEC);
        assert!(record.extra.is_none());
        assert_eq!((record.name(), record.resource()), ("op", Some("r")));
    }

    #[test]
    fn explicit_start_gives_wall_clock_duration() {
        let mut record = SpanRecord::named(1, 0, Cow::Borrowed("op"));
        record.start = 1_000;
        record.finish_at_unix(5_000);
        assert_eq!(record.duration_ns, 4_000);
        record.finish_at_unix(10);
        assert_eq!(record.duration_ns, 0);
    }
}

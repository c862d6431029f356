//! The `log` crate: a logger wrapper.

/// Wraps a `log::Log`: every record logged while a span is active gets the
/// span's correlation fields appended to its message.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::integrations::log::CorrelatedLogger;
///
/// struct Stderr;
/// impl log::Log for Stderr {
///     fn enabled(&self, _: &log::Metadata<'_>) -> bool { true }
///     fn log(&self, record: &log::Record<'_>) { eprintln!("{}", record.args()) }
///     fn flush(&self) {}
/// }
/// log::set_boxed_logger(Box::new(CorrelatedLogger::new(Stderr))).unwrap();
/// log::set_max_level(log::LevelFilter::Info);
/// ```
#[derive(Debug)]
pub struct CorrelatedLogger<L> {
    inner: L,
}

impl<L> CorrelatedLogger<L> {
    /// Wraps `inner`.
    pub fn new(inner: L) -> CorrelatedLogger<L> {
        CorrelatedLogger { inner }
    }
}

impl<L: log::Log> log::Log for CorrelatedLogger<L> {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        match crate::tracer::log_context() {
            Some(fields) => self.inner.log(
                &log::Record::builder()
                    .args(format_args!("{} {fields}", record.args()))
                    .metadata(record.metadata().clone())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            ),
            None => self.inner.log(record),
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

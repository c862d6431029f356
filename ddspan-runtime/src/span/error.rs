//! What a returned `Err` records on its span, decided by the value's type.
//!
//! `#[dd_span]` cannot know from the tokens whether a function returns a
//! `Result` (aliases such as `io::Result<T>` or `anyhow::Result<T>` hide it),
//! so the generated code asks the value itself, through method resolution on
//! a reference ladder ("autoref specialisation"): the first rung whose impl
//! applies wins.
//!
//! | rung | the error type | `error.message` | `error.stack` |
//! |---|---|---|---|
//! | 4 | implements [`ExpectedError`] | as rung 3, or nothing when `is_expected` | |
//! | 3 | implements `std::error::Error` | `Display` | the `source()` chain |
//! | 2 | `Display + Debug` (e.g. `anyhow::Error`, `Box<dyn Error>`) | `Display` | `Debug` (anyhow: chain and backtrace) |
//! | 1 | only `Debug` | `Debug` | none |
//! | 0 | not a `Result`, or an error type without `Debug` | nothing is recorded | |
//!
//! Each rung is a trait the compiler must try for every instrumented
//! function, so there are as few as the distinctions need (compile cost is
//! measured by `scripts/compile-cost.sh`).

use std::borrow::Cow;
use std::error::Error;
use std::fmt::{Debug, Display, Write};

use crate::record::SpanRecord;
use crate::util::safe_display;

/// The error fields of a span: `error.message`, `error.type`, `error.stack`.
///
/// Made from a standard error with [`ErrorFields::from_error`], or from
/// parts with [`ErrorFields::new`] and [`ErrorFields::with_stack`] (the
/// struct is `#[non_exhaustive]`: more fields may come).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorFields {
    /// `error.message`.
    pub message: String,
    /// `error.type`: the error's Rust type name (borrowed from the
    /// compiler's `type_name`: recording an error allocates no copy of it).
    pub error_type: Cow<'static, str>,
    /// `error.stack`: the cause chain, and a backtrace where the error has one.
    pub stack: Option<String>,
}

impl ErrorFields {
    /// The fields of a standard error: its message, its type name and its
    /// `source()` chain. A `Display` that panics or fails gives a
    /// placeholder message; the panic never reaches the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// let error = std::io::Error::other("disk full");
    /// let fields = ddspan_runtime::ErrorFields::from_error(&error);
    /// assert_eq!(fields.message, "disk full");
    /// assert_eq!(fields.error_type, "std::io::error::Error");
    /// ```
    pub fn from_error<E: Error + ?Sized>(error: &E) -> ErrorFields {
        ErrorFields {
            message: safe_display::display(&error),
            error_type: Cow::Borrowed(std::any::type_name::<E>()),
            stack: source_chain(error),
        }
    }

    /// Fields from parts, with no `error.stack`: for errors that are not a
    /// `std::error::Error` (a status code, a message from a peer).
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{tracer, ErrorFields};
    ///
    /// let fields = ErrorFields::new("upstream answered 503", "HttpStatus");
    /// assert_eq!(fields.error_type, "HttpStatus");
    /// tracer::start_span("proxy").record_error(fields);
    /// ```
    pub fn new(
        message: impl Into<String>,
        error_type: impl Into<Cow<'static, str>>,
    ) -> ErrorFields {
        ErrorFields {
            message: message.into(),
            error_type: error_type.into(),
            stack: None,
        }
    }

    /// Sets `error.stack`: a cause chain or a backtrace.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::ErrorFields;
    ///
    /// let fields = ErrorFields::new("query failed", "DbError")
    ///     .with_stack("caused by: connection reset\n");
    /// assert!(fields.stack.is_some());
    /// ```
    pub fn with_stack(mut self, stack: impl Into<String>) -> ErrorFields {
        self.stack = Some(stack.into());
        self
    }

    pub(crate) fn apply(self, record: &mut SpanRecord) {
        record.set_error_fields(self.message, self.error_type, self.stack);
    }
}

fn source_chain<E: Error + ?Sized>(error: &E) -> Option<String> {
    error.source()?;
    let chain = safe_display::caught("a cause's Display", |chain| {
        let mut source = error.source();
        while let Some(cause) = source {
            writeln!(chain, "caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    });
    (!chain.is_empty()).then_some(chain)
}

/// An error type some of whose values are expected outcomes, not failures
/// (a `NotFound` answered with a 404, a validation error, a cache miss): a
/// function instrumented with `#[dd_span]` that returns such an `Err`
/// leaves its span unmarked. Errors for which
/// [`is_expected`](ExpectedError::is_expected) is `false` mark it as any
/// other error does.
///
/// For a function whose every `Err` is expected, `#[dd_span(error =
/// false)]` says so without a trait.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::ExpectedError;
///
/// #[derive(Debug)]
/// enum ApiError {
///     NotFound,
///     Database(String),
/// }
/// impl std::fmt::Display for ApiError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         match self {
///             ApiError::NotFound => f.write_str("not found"),
///             ApiError::Database(e) => write!(f, "database: {e}"),
///         }
///     }
/// }
/// impl std::error::Error for ApiError {}
///
/// impl ExpectedError for ApiError {
///     fn is_expected(&self) -> bool {
///         matches!(self, ApiError::NotFound)
///     }
/// }
/// assert!(ApiError::NotFound.is_expected());
/// ```
pub trait ExpectedError: Error {
    /// Whether this error is an expected outcome, which does not mark the
    /// span.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::ExpectedError;
    ///
    /// #[derive(Debug)]
    /// struct CacheMiss;
    /// impl std::fmt::Display for CacheMiss {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("cache miss")
    ///     }
    /// }
    /// impl std::error::Error for CacheMiss {}
    /// impl ExpectedError for CacheMiss {
    ///     fn is_expected(&self) -> bool {
    ///         true
    ///     }
    /// }
    /// assert!(CacheMiss.is_expected());
    /// ```
    fn is_expected(&self) -> bool;
}

/// A borrowed return value, asked by `#[dd_span]` whether it is an `Err`.
#[doc(hidden)]
pub struct ReturnValue<'a, T>(pub &'a T);

impl<T> Clone for ReturnValue<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ReturnValue<'_, T> {}

impl<T> Debug for ReturnValue<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReturnValue")
    }
}

macro_rules! rung {
    ($trait:ident) => {
        #[doc(hidden)]
        pub trait $trait: Sized {
            /// The error fields if the value is an `Err`.
            fn __ddspan_error(self) -> Option<ErrorFields>;

            /// Marks the guard's span if the value is an `Err`. What
            /// `#[dd_span]` calls: one call returning nothing keeps the
            /// instrumented function small (no `Option<ErrorFields>` to
            /// match and drop there), which is most of the check's compile
            /// time.
            ///
            /// Asks whether the span records first: tracing off, nothing is
            /// formatted or allocated for an `Err` (its `Display` and
            /// `source()` chain cost ~200 ns).
            #[inline]
            fn __ddspan_record(self, guard: &crate::LocalSpanGuard) {
                if !guard.is_recording() {
                    return;
                }
                if let Some(error) = self.__ddspan_error() {
                    guard.record_error(error);
                }
            }

            /// Marks the active span (an instrumented future's, while it is
            /// polled) if the value is an `Err`; nothing is formatted when
            /// no span records.
            #[inline]
            fn __ddspan_record_active(self) {
                if !crate::context::stack::active_records() {
                    return;
                }
                if let Some(error) = self.__ddspan_error() {
                    crate::context::stack::with_active_record(|record| error.apply(record));
                }
            }
        }
    };
}

rung!(ErrorRung);

impl<T, E: ExpectedError> ErrorRung for &&&&ReturnValue<'_, Result<T, E>> {
    fn __ddspan_error(self) -> Option<ErrorFields> {
        match self.0 {
            Err(error) if !error.is_expected() => Some(ErrorFields::from_error(error)),
            _ => None,
        }
    }
}

impl<T, E: Error> ErrorRung for &&&ReturnValue<'_, Result<T, E>> {
    fn __ddspan_error(self) -> Option<ErrorFields> {
        self.0.as_ref().err().map(ErrorFields::from_error)
    }
}

impl<T, E: Display + Debug> ErrorRung for &&ReturnValue<'_, Result<T, E>> {
    fn __ddspan_error(self) -> Option<ErrorFields> {
        self.0.as_ref().err().map(|error| {
            let message = safe_display::display(error);
            let debug = safe_display::debug(error);
            ErrorFields {
                stack: (debug != message).then_some(debug),
                message,
                error_type: Cow::Borrowed(std::any::type_name::<E>()),
            }
        })
    }
}

impl<T, E: Debug> ErrorRung for &ReturnValue<'_, Result<T, E>> {
    fn __ddspan_error(self) -> Option<ErrorFields> {
        self.0.as_ref().err().map(|error| ErrorFields {
            message: safe_display::debug(error),
            error_type: Cow::Borrowed(std::any::type_name::<E>()),
            stack: None,
        })
    }
}

impl<T> ErrorRung for ReturnValue<'_, T> {
    fn __ddspan_error(self) -> Option<ErrorFields> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! ask {
        ($value:expr) => {{
            #[allow(unused_imports)]
            use super::ErrorRung as _;
            let value = $value;
            (&&&&ReturnValue(&value)).__ddspan_error()
        }};
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("loading the config failed")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    type Alias<T> = Result<T, Outer>;

    #[test]
    fn std_errors_through_an_alias_carry_their_chain() {
        let value: Alias<u8> = Err(Outer(std::io::Error::other("no such file")));
        let fields = ask!(value).unwrap();
        assert_eq!(fields.message, "loading the config failed");
        assert!(
            fields.error_type.ends_with("Outer"),
            "{}",
            fields.error_type
        );
        assert_eq!(fields.stack.as_deref(), Some("caused by: no such file\n"));
    }

    #[test]
    fn boxed_dyn_errors() {
        let value: Result<(), Box<dyn Error + Send + Sync>> = Err("bad input".into());
        let fields = ask!(value).unwrap();
        assert_eq!(fields.message, "bad input");
        assert!(
            fields.error_type.contains("dyn core::error::Error"),
            "{}",
            fields.error_type
        );
    }

    #[test]
    fn debug_only_and_opaque_errors() {
        #[derive(Debug)]
        #[allow(dead_code)] // read through Debug only
        struct OnlyDebug {
            code: u8,
        }
        let fields = ask!(Err::<(), _>(OnlyDebug { code: 7 })).unwrap();
        assert_eq!(fields.message, "OnlyDebug { code: 7 }");
        struct Opaque;
        assert_eq!(ask!(Err::<(), _>(Opaque)), None, "nothing to say about it");
    }

    #[test]
    fn expected_errors_record_nothing() {
        #[derive(Debug)]
        enum Lookup {
            Missing,
            Broken,
        }
        impl Display for Lookup {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{self:?}")
            }
        }
        impl Error for Lookup {}
        impl ExpectedError for Lookup {
            fn is_expected(&self) -> bool {
                matches!(self, Lookup::Missing)
            }
        }
        assert_eq!(ask!(Err::<(), _>(Lookup::Missing)), None);
        let fields = ask!(Err::<(), _>(Lookup::Broken)).unwrap();
        assert_eq!(fields.message, "Broken");
    }

    #[test]
    fn ok_values_and_non_results_record_nothing() {
        assert_eq!(ask!(Ok::<u8, std::io::Error>(1)), None);
        assert_eq!(ask!(5u32), None);
        assert_eq!(ask!(Some("x")), None);
    }

    #[test]
    fn formatting_that_panics_is_contained() {
        #[derive(Debug)]
        struct Hostile;
        impl Display for Hostile {
            fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                panic!("Display of Hostile")
            }
        }
        impl Error for Hostile {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&Cause)
            }
        }
        #[derive(Debug)]
        struct Cause;
        impl Display for Cause {
            fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                Err(std::fmt::Error)
            }
        }
        impl Error for Cause {}

        let fields = ask!(Err::<(), _>(Hostile)).unwrap();
        assert_eq!(fields.message, "<Display panicked>");
        assert!(fields.error_type.ends_with("Hostile"));
        assert_eq!(
            fields.stack.as_deref(),
            Some("<a cause's Display returned an error>")
        );

        struct HostileDebug;
        impl std::fmt::Debug for HostileDebug {
            fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                panic!("Debug of HostileDebug")
            }
        }
        let fields = ask!(Err::<(), _>(HostileDebug)).unwrap();
        assert_eq!(fields.message, "<Debug panicked>");
    }
}

//! `options!`: the one place each configuration option is described.
//!
//! Input, one entry per option (see the table in `config.rs`):
//!
//! ```text
//! /// One line: the table's "meaning" column and the setter's first line.
//! /// More lines: on the setter only.
//! name: FieldType {
//!     env: ["DD_VAR", "DD_FALLBACK_VAR"] => reader,  // none: set in code only
//!     default: "as shown in docs and warnings" => default_expression,
//!     set: ArgType => conversion, unless: rejected,   // a setter `name(impl Into<ArgType>)`
//!     set_by: hand_written_setter,                    // or one written by hand
//! }
//! ```
//!
//! Output:
//! - `Config`, one `pub(crate) name: FieldType` per option, with the option
//!   table (variable, builder method, default, meaning) in its docs;
//! - `CodeValues`, what was set in code (`Option<FieldType>` each);
//! - per `set:`, a typed setter on `ConfigBuilder` documented with the line,
//!   the variables and the default; `conversion` clamps the value, a value
//!   for which `rejected` is true is ignored;
//! - `resolve`: each field from code, else from the environment through
//!   `reader` (a [`Read`](super::env::Read): one warning for a malformed
//!   value, naming the variable and the default), else the default;
//! - for tests, `OPTIONS` (each option's markdown row, also README.md's) and
//!   `shown_defaults` (the default as shown next to the default's value).

macro_rules! options {
    (
        $(
            $(#[doc = $doc:literal])+
            $name:ident: $ty:ty {
                $(env: [$($var:literal),+] => $read:expr,)?
                default: $shown:literal => $default:expr,
                $(set: $arg:ty $(=> $conv:expr)?, $(unless: $reject:expr,)?)?
                $(set_by: $setter:ident,)?
            }
        )*
    ) => {
        /// The resolved tracer configuration.
        ///
        /// Build one with [`Config::builder`] (values set in code win over the
        /// environment) or [`Config::from_env`]. A malformed variable gives one
        /// warning on stderr, naming it, and its default; it never panics.
        ///
        #[doc = $crate::config::table::options!(@header)]
        $(#[doc = $crate::config::table::options!(@row $name [$($doc)+] [$($($var)+)?] $shown [$($arg)?] [$($setter)?])])*
        #[derive(Clone, Debug)]
        pub struct Config {
            $(pub(crate) $name: $ty,)*
        }

        /// The values set in code; `None` leaves an option to the environment.
        #[derive(Clone, Debug, Default)]
        pub(crate) struct CodeValues {
            $($name: ::core::option::Option<$ty>,)*
        }

        impl ConfigBuilder {
            $($crate::config::table::options! {
                @setter $name: $ty [$($doc)+] [$($($var)+)?] $shown
                [$($arg $(=> $conv)? $(, unless $reject)?)?]
            })*
        }

        /// Each option from code, else from the environment, else its default.
        fn resolve(code: CodeValues, env: &mut $crate::config::env::EnvReader<'_>) -> Config {
            Config {
                $($name: code.$name
                    $(.or_else(|| $crate::config::env::Read::read(&$read, env, &[$($var),+], $shown)))?
                    .unwrap_or_else(|| $default),)*
            }
        }

        /// The table's header, then one markdown row per option.
        #[cfg(test)]
        pub(crate) const OPTIONS: (&str, &[&str]) = (
            $crate::config::table::options!(@header),
            &[$($crate::config::table::options!(@row $name [$($doc)+] [$($($var)+)?] $shown [$($arg)?] [$($setter)?]),)*],
        );

        /// Each option's name, its default as shown, and its default's value
        /// shown the same way (`None` where it depends on the machine).
        #[cfg(test)]
        pub(crate) fn shown_defaults() -> ::std::vec::Vec<(&'static str, &'static str, ::core::option::Option<::std::string::String>)> {
            use $crate::config::tests::Shown as _;
            let defaults: ::std::vec::Vec<(&'static str, &'static str, ::core::option::Option<::std::string::String>)> =
                ::std::vec![$((stringify!($name), $shown, { let value: $ty = $default; value.shown() }),)*];
            defaults
        }
    };

    (@header) => {
        "| variable | builder | default | meaning |\n|---|---|---|---|"
    };

    (@row $name:ident [$line:literal $($more:literal)*] [$($var:literal)*] $shown:literal [$($arg:ty)?] [$($setter:ident)?]) => {
        concat!(
            "| ", $crate::config::table::options!(@vars [$($var)*]),
            " | `", $(stringify!($setter),)? $crate::config::table::options!(@generated $name [$($arg)?]), "`",
            " | ", $shown,
            " |", $line, " |"
        )
    };

    // The name of a generated setter; nothing when the setter is written by hand.
    (@generated $name:ident []) => { "" };
    (@generated $name:ident [$arg:ty]) => { stringify!($name) };

    (@vars []) => { "—" };
    (@vars [$first:literal $($var:literal)*]) => { concat!("`", $first, "`" $(, ", `", $var, "`")*) };

    (@setter $name:ident: $ty:ty [$($doc:literal)+] [$($var:literal)*] $shown:literal []) => {};
    (
        @setter $name:ident: $ty:ty [$($doc:literal)+] [$($var:literal)*] $shown:literal
        [$arg:ty $(=> $conv:expr)? $(, unless $reject:expr)?]
    ) => {
        $(#[doc = $doc])+
        ///
        #[doc = $crate::config::table::options!(@where [$($var)*] $shown)]
        pub fn $name(mut self, value: impl ::core::convert::Into<$arg>) -> Self {
            let value: $arg = value.into();
            $(if $reject(&value) {
                return self;
            })?
            $(let value = $conv(value);)?
            self.code.$name = ::core::option::Option::Some(value);
            self
        }
    };

    (@where [] $shown:literal) => { concat!("Set in code only. Default: ", $shown, ".") };
    (@where [$($var:literal)+] $shown:literal) => {
        concat!("Overrides ", $crate::config::table::options!(@vars [$($var)+]), ". Default: ", $shown, ".")
    };
}

pub(crate) use options;

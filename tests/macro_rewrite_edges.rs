//! Edge cases of the rewrite of a fallible function's body (`return` and
//! `?` as `break`s out of a labeled block, else a closure): each function is
//! compiled twice, as written and under `#[dd_span]`, and both must return
//! the same value with the same side effects, with an `Err` marking the
//! span (and its `error.type`) exactly when one is returned.

use std::cell::RefCell;
use std::error::Error;
use std::fmt::{self, Debug, Display};
use std::future::Future;
use std::num::ParseIntError;
use std::pin::pin;
use std::str::FromStr;
use std::sync::MutexGuard;
use std::task::{Context, Poll, Waker};

use ddspan::{dd_span, FinishedSpan, MemoryExporter};

#[path = "support/memory.rs"]
mod memory;

fn capture() -> (MutexGuard<'static, ()>, MemoryExporter) {
    memory::capture("rewrite-edges")
}

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// A side effect, compared between the two builds of a function.
fn note(what: impl Display) {
    LOG.with(|log| log.borrow_mut().push(what.to_string()));
}

fn take_log() -> Vec<String> {
    LOG.with(|log| std::mem::take(&mut *log.borrow_mut()))
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
    }
}

#[derive(Debug, PartialEq)]
pub(crate) struct AppError(pub(crate) String);

impl Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "app: {}", self.0)
    }
}

impl Error for AppError {}

impl From<ParseIntError> for AppError {
    fn from(error: ParseIntError) -> Self {
        AppError(error.to_string())
    }
}

impl From<Code> for AppError {
    fn from(code: Code) -> Self {
        AppError(format!("code {}", code.0))
    }
}

impl From<&'static str> for AppError {
    fn from(text: &'static str) -> Self {
        AppError(text.to_owned())
    }
}

/// A `Copy` error, so `Result<u8, Code>` values can sit in places.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Code(pub(crate) u8);

/// Logs its drop.
pub(crate) struct Noisy(pub(crate) &'static str);

impl Noisy {
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

impl Drop for Noisy {
    fn drop(&mut self) {
        note(format_args!("drop {}", self.0));
    }
}

pub(crate) fn lookup(key: &str) -> Result<String, AppError> {
    note(format_args!("lookup {key}"));
    if key.is_empty() {
        Err(AppError("no key".to_owned()))
    } else {
        Ok(key.repeat(2))
    }
}

macro_rules! double {
    ($e:expr) => {
        $e * 2
    };
}

/// Hides a `?`.
macro_rules! parse_or_return {
    ($s:expr) => {
        $s.parse::<u8>()?
    };
}

/// Hides a `return`.
macro_rules! bail_if {
    ($c:expr) => {
        if $c {
            return Err(AppError("bailed".to_owned()));
        }
    };
}

/// `mod name { plain::name, name }`: the function as written and under
/// `#[dd_span]`, from the same tokens.
macro_rules! twin {
    ($name:ident => $($item:tt)*) => {
        #[allow(
            clippy::boxed_local,
            clippy::needless_borrow,
            clippy::needless_lifetimes,
            clippy::needless_return,
            clippy::never_loop,
            clippy::ptr_arg,
            clippy::useless_vec
        )]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            pub(crate) mod plain {
                #[allow(unused_imports)]
                use super::super::*;
                $($item)*
            }
            #[dd_span]
            $($item)*
        }
    };
}

/// Runs both builds of a case and asserts the same value and log.
macro_rules! same {
    ($case:ident ( $($arg:expr),* )) => {
        same!($case($($arg),*) => |value| value)
    };
    ($case:ident ( $($arg:expr),* ) => $shown:expr) => {{
        let expected = $shown($case::plain::$case($($arg),*));
        let expected_log = take_log();
        let actual = $shown($case::$case($($arg),*));
        let actual_log = take_log();
        assert_eq!(
            format!("{actual:?}"),
            format!("{expected:?}"),
            "{}: value",
            stringify!($case)
        );
        assert_eq!(actual_log, expected_log, "{}: side effects", stringify!($case));
    }};
}

// `?` and `return` of closures, async blocks and async closures are theirs.
twin!(closures => pub(crate) fn closures(items: &[&str]) -> Result<u32, AppError> {
    let parse = move |s: &str| -> Result<u32, ParseIntError> {
        let value = s.parse::<u32>()?;
        if value == 0 {
            return Ok(100);
        }
        Ok(value)
    };
    let length = |s: &str| {
        if s.is_empty() {
            return 7;
        }
        s.len() as u32
    };
    let mut total = 0;
    for s in items {
        total += parse(s)? + length(s);
    }
    let nested = || -> Result<u32, AppError> {
        let inner = || -> Option<u32> {
            let first = items.first()?;
            first.parse().ok()
        };
        Ok(inner().unwrap_or(0))
    };
    Ok(total + nested()?)
});

twin!(async_blocks => pub(crate) fn async_blocks(text: &str) -> Result<u32, AppError> {
    let future = async move {
        let value: u32 = text.parse()?;
        if value > 10 {
            return Err(AppError("big".to_owned()));
        }
        Ok::<u32, AppError>(value)
    };
    let value = block_on(future)?;
    let closure = async move |s: &str| -> Result<u32, AppError> {
        if s.len() > 2 {
            return Err(AppError("long".to_owned()));
        }
        Ok(s.parse::<u32>()? + 1)
    };
    let more = block_on(closure(text))?;
    Ok(value + more)
});

// Items in the body keep their own exits.
twin!(nested_items => pub(crate) fn nested_items(text: &str) -> Result<u32, AppError> {
    fn inner(s: &str) -> Result<u32, ParseIntError> {
        let value = s.parse::<u32>()?;
        if value == 1 {
            return Ok(11);
        }
        Ok(value)
    }
    struct Helper;
    impl Helper {
        fn twice(&self, s: &str) -> Result<u32, AppError> {
            if s.is_empty() {
                return Err(AppError("empty".to_owned()));
            }
            Ok(s.parse::<u32>()? * 2)
        }
    }
    const K: u32 = const { 3 };
    let total = inner(text)? + Helper.twice(text)? + K;
    Ok(total)
});

// Loops with their own `break`s and labels around `?` and `return`.
twin!(loops => pub(crate) fn loops(items: &[&str]) -> Result<u32, AppError> {
    let mut i = 0;
    let first_long = loop {
        if i >= items.len() {
            break 0;
        }
        let length = lookup(items[i])?.len() as u32;
        if length > 4 {
            break length;
        }
        i += 1;
    };
    let mut sum = 0;
    'outer: for a in items {
        for b in items {
            if b.is_empty() {
                continue 'outer;
            }
            if *a == "stop" {
                break 'outer;
            }
            if *a == "ret" {
                return Ok(999);
            }
            sum += a.parse::<u32>()? * b.len() as u32;
        }
    }
    let labeled = 'block: {
        if sum > 100 {
            break 'block 1;
        }
        2
    };
    let mut n = 0;
    while n < lookup("w")?.len() {
        n += 1;
    }
    Ok(first_long + sum + labeled + n as u32)
});

// `return` with conversions and coercions to the declared type.
twin!(coercions => pub(crate) fn coercions(n: u8) -> Result<Box<dyn Debug>, Box<dyn Error + Send + Sync>> {
    if n == 0 {
        return Err("zero".into());
    }
    if n == 1 {
        return Ok(Box::new(1_u8));
    }
    if n == 2 {
        let error = "x".parse::<u8>().unwrap_err();
        return Err(error.into());
    }
    if n == 3 {
        Err(AppError("three".to_owned()))?;
    }
    if n == 4 {
        return Err(Box::new(AppError("four".to_owned())));
    }
    Ok(Box::new(format!("n={n}")))
});

twin!(slices => pub(crate) fn slices<'a>(v: &'a Vec<u8>, fail: bool) -> Result<&'a [u8], AppError> {
    if fail {
        return Err(AppError("fail".to_owned()));
    }
    if v.is_empty() {
        return Ok(&v);
    }
    Ok(v)
});

// Postfix chains before `?`, written without closures or macros so the
// body is rewritten as tokens.
twin!(postfix => pub(crate) fn postfix(a: &[Result<u8, Code>], pair: (Result<u8, Code>, u8), s: &str, i: usize) -> Result<u32, AppError> {
    let x = a[i]?;
    let y = pair.0?;
    let z = s.trim().parse::<u8>()?.checked_add(1).ok_or(Code(9))?;
    let w = lookup(s)?.len();
    let v = lookup(s)?.trim().parse::<u32>().map_err(AppError::from)?.min(1000);
    let first = a.first().copied().ok_or(Code(8))??;
    Ok(u32::from(x) + u32::from(y) + u32::from(z) + w as u32 + v + u32::from(first))
});

// `?` on block-like operands.
twin!(block_like => pub(crate) fn block_like(s: &str, c: bool) -> Result<u32, AppError> {
    let a = match c {
        true => s.parse::<u8>(),
        false => Ok(1),
    }?;
    let b = if c { s.parse::<u8>() } else { Ok(2) }?;
    let d = (s.parse::<u8>())?;
    let e = { s.parse::<u8>() }?;
    let f = loop {
        break s.parse::<u8>();
    }?;
    Ok(u32::from(a) + u32::from(b) + u32::from(d) + u32::from(e) + u32::from(f))
});

// `?` and `return` next to macros: standard ones, a user macro, user
// macros hiding `?` or `return`.
twin!(in_macros => pub(crate) fn in_macros(a: &str, b: &str) -> Result<String, AppError> {
    let v = vec![a.parse::<u8>()?, b.parse::<u8>()?];
    let s = format!("{}-{}", a.parse::<u8>()?, v.len());
    note(format_args!("{}", b.parse::<u8>()?));
    assert!(a.parse::<u8>()? < 200, "small");
    let m = double!(b.parse::<u8>()?);
    let h = parse_or_return!(a);
    bail_if!(h == 7);
    Ok(format!("{s} {m} {h}"))
});

twin!(hidden_in_std_macro => pub(crate) fn hidden_in_std_macro(a: &str) -> Result<u8, AppError> {
    let v = vec![parse_or_return!(a)];
    Ok(v[0])
});

twin!(hidden_return_in_std_macro => pub(crate) fn hidden_return_in_std_macro(a: &str) -> Result<u8, AppError> {
    let v = vec![{ bail_if!(a.is_empty()); 1 }];
    Ok(v[0])
});

twin!(plain_macro_and_return => pub(crate) fn plain_macro_and_return(a: &str) -> Result<u8, AppError> {
    if a == "r" {
        return Err(AppError(format!("r{}", 1)));
    }
    let value = a.parse::<u8>()?;
    assert_ne!(value, 200, "{value}");
    Ok(value)
});

// Operators around `?`.
twin!(operators => pub(crate) fn operators(a: &[Result<u8, Code>], s: &str) -> Result<i64, AppError> {
    let x = a[0]? as i64;
    let neg = -s.parse::<i64>()?;
    let not = !a[1]?;
    let r = &a[0]?;
    let range = 0..a[1]?;
    let range2 = a[0]?..=a[1]?;
    let sum = a[0]? as i64 + a[1]? as i64;
    let compare = i64::from(a[0]? < a[1]?);
    Ok(x + neg + i64::from(not) + i64::from(*r) + range.len() as i64 + range2.count() as i64 + sum + compare)
});

twin!(let_else => pub(crate) fn let_else(v: Option<&str>) -> Result<u8, AppError> {
    let Some(s) = v else {
        return Err(AppError("none".to_owned()));
    };
    let Ok(n) = s.parse::<u8>() else { return Ok(0) };
    match n {
        0 => return Err(AppError("zero".to_owned())),
        1 => {
            return Ok(10);
        }
        _ => {}
    }
    Ok(n)
});

// `?` in a match guard, a `while` condition, a `for` iterator, struct,
// tuple and array expressions, and nested `?`.
twin!(positions => pub(crate) fn positions(a: &[Result<u8, Code>], s: &str) -> Result<u32, AppError> {
    let mut total = 0_u32;
    match s.len() {
        n if n > lookup(s)?.len() => total += 1,
        _ => total += 2,
    }
    let mut i = 0;
    while a[i]? > 3 {
        i += 1;
    }
    for c in lookup(s)?.chars() {
        total += c.len_utf8() as u32;
    }
    let pair = (a[0]?, [a[1]?, a[0]?]);
    let range = std::ops::Range { start: a[0]?, end: a[1]? };
    total += u32::from(pair.0) + u32::from(pair.1[1]) + range.len() as u32;
    total += u32::from(lookup(&lookup(s)?)?.len() as u8);
    Ok(total)
});

// The `Ok` type inferred from a later use, `?` in the argument of a
// method borrowing the same value, a `?` result coerced, assigned through
// and borrowed.
twin!(inference => pub(crate) fn inference(s: &str, v: &mut Vec<u8>) -> Result<u8, AppError> {
    let n = s.parse()?;
    v.push(u8::try_from(v.len()).ok().ok_or(Code(1))?);
    let key: &str = &lookup(s)?;
    *v.first_mut().ok_or(Code(2))? += n;
    lookup(key)?.push('!');
    note(format_args!("{v:?} {key}"));
    Ok(n)
});

/// A `Copy` value in a packed struct.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub(crate) struct Packed {
    pub(crate) tag: u8,
    pub(crate) value: Result<u16, Code>,
}

// Places as operands: a packed field, a `Box`'s content moved out.
twin!(places => pub(crate) fn places(p: Packed, boxed: Box<Result<String, Code>>) -> Result<String, AppError> {
    let value = p.value?;
    let text = (*boxed)?;
    let tag = p.tag;
    Ok(format!("{value} {text} {tag}"))
});

// `?` as the whole statement, value in a statement of its own.
twin!(err_statement => pub(crate) fn err_statement(fail: bool) -> Result<u8, AppError> {
    if fail {
        Err(Code(3))?;
    }
    Ok(1)
});

// A `return` whose value is a labeled loop, a loop, or parenthesized.
twin!(return_values => pub(crate) fn return_values(n: u8) -> Result<u8, AppError> {
    if n == 0 {
        return 'inner: loop {
            break 'inner Ok(1);
        };
    }
    if n == 1 {
        return loop {
            break Err(AppError("loop".to_owned()));
        };
    }
    if n == 2 {
        return match n {
            2 => Ok(2),
            _ => Err(AppError("no".to_owned())),
        };
    }
    if n == 3 {
        return if n > 2 { Ok(3) } else { Ok(4) };
    }
    return Ok(n);
});

// User names equal to the generated ones, a user label too.
twin!(user_names => pub(crate) fn user_names(a: &[Result<u8, Code>]) -> Result<u8, AppError> {
    let __ddspan_ret = a[0]?;
    let __ddspan_value = 1;
    let __ddspan_error = 2;
    let __ddspan_guard = '__ddspan_body: {
        if a[1]? > 5 {
            break '__ddspan_body 10;
        }
        if a[1]? == 5 {
            return Ok(55);
        }
        3
    };
    Ok(__ddspan_ret + __ddspan_value + __ddspan_error + __ddspan_guard)
});

twin!(raw_idents => pub(crate) fn raw_idents(r#match: Result<u8, Code>) -> Result<u8, AppError> {
    let r#return = r#match?;
    if r#return == 0 {
        return Err(Code(0).into());
    }
    Ok(r#return)
});

// Drops: locals, temporaries and parameters in the same order.
twin!(drops => pub(crate) fn drops(first: Noisy, key: &str) -> Result<usize, AppError> {
    let local = Noisy("local");
    let length = lookup(key)?.len() + Noisy("temporary").len();
    if length == 11 {
        let _inner = Noisy("inner");
        return Ok(Noisy("returned").len());
    }
    Ok(first.len() + local.len() + Noisy("tail").len())
});

twin!(generic => pub(crate) fn generic<T, E>(s: &str) -> Result<T, E>
where
    T: FromStr,
    E: Error + From<T::Err> + From<&'static str>,
{
    if s.is_empty() {
        return Err("empty".into());
    }
    let value = s.parse::<T>()?;
    Ok(value)
});

twin!(io_result => pub(crate) fn io_result(path: &str) -> std::io::Result<u64> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(std::io::Error::other("a directory"));
    }
    Ok(meta.len())
});

twin!(anyhow_result => pub(crate) fn anyhow_result(s: &str) -> anyhow::Result<u8> {
    let v: u8 = s.parse()?;
    let w = anyhow::Context::context(s.parse::<u8>(), "second")?;
    if v == 0 {
        return Err(anyhow::Error::msg("zero"));
    }
    Ok(v + w)
});

twin!(impl_trait => pub(crate) fn impl_trait(s: &str) -> Result<impl Debug, AppError> {
    let v: u8 = s.parse()?;
    if v == 0 {
        return Err(AppError("zero".to_owned()));
    }
    Ok(v)
});

pub(crate) type Outcome<T> = Result<T, AppError>;

twin!(alias_returns => pub(crate) fn alias_returns(n: u8) -> Outcome<u8> {
    if n == 0 {
        return Err(AppError("zero".to_owned()));
    }
    Ok(n)
});

twin!(alias_question => pub(crate) fn alias_question(s: &str) -> Outcome<u8> {
    if s.is_empty() {
        return Err(AppError("empty".to_owned()));
    }
    Ok(s.parse::<u8>()?)
});

// Attributes and qualifiers on the function.
twin!(attributes => /// Documented.
#[inline]
#[must_use = "the value"]
#[allow(clippy::needless_return)]
#[cfg_attr(all(), allow(unused_variables))]
pub(crate) fn attributes(s: &str) -> Result<u8, AppError> {
    let unused = 1;
    if s.is_empty() {
        return Err(AppError("empty".to_owned()));
    }
    return Ok(s.parse::<u8>()?);
});

twin!(extern_c => #[allow(improper_ctypes_definitions)]
pub(crate) extern "C" fn extern_c(r: Result<u8, Code>) -> Result<u8, AppError> {
    Ok(r? + 1)
});

twin!(track_caller => #[track_caller]
pub(crate) fn track_caller(fail: bool) -> Result<u32, AppError> {
    if fail {
        return Err(AppError("fail".to_owned()));
    }
    Ok(std::panic::Location::caller().line())
});

struct Parsed(u8);

impl FromStr for Parsed {
    type Err = AppError;

    #[dd_span]
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value = s.parse::<u8>()?;
        if value == 0 {
            return Err(AppError("zero".to_owned()));
        }
        Ok(Parsed(value))
    }
}

struct Account {
    balance: u32,
    history: Vec<u32>,
}

#[dd_span(component = "bank")]
impl Account {
    fn withdraw(&mut self, text: &str) -> Result<&mut u32, AppError> {
        let amount: u32 = text.parse()?;
        if amount > self.balance {
            return Err(AppError("insufficient".to_owned()));
        }
        self.balance -= amount;
        self.history.push(amount);
        Ok(&mut self.balance)
    }

    fn close(self, fail: bool) -> Result<Vec<u32>, AppError> {
        if fail {
            return Err(AppError("open".to_owned()));
        }
        let _check = lookup("close")?;
        Ok(self.history)
    }

    fn named(text: &str) -> Result<Self, <Parsed as FromStr>::Err> {
        let Parsed(value) = text.parse()?;
        Ok(Account {
            balance: u32::from(value),
            history: Vec::new(),
        })
    }
}

#[dd_span]
mod defaults {
    use super::AppError;

    pub(crate) trait Source {
        fn raw(&self) -> &str;

        fn number(&self) -> Result<u8, AppError> {
            if self.raw().is_empty() {
                return Err(AppError("empty".to_owned()));
            }
            Ok(self.raw().parse::<u8>()?)
        }
    }

    impl Source for &str {
        fn raw(&self) -> &str {
            self
        }
    }
}

struct Shown(u8);

impl Display for Shown {
    #[dd_span]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<")?;
        if self.0 == 0 {
            return write!(f, "zero>");
        }
        write!(f, "{}>", self.0)
    }
}

/// A `#[dd_span]` closure and a `#[dd_span]` function inside a fallible
/// function.
#[dd_span]
fn nested_instrumented(s: &str) -> Result<u8, AppError> {
    #[dd_span]
    fn inner(s: &str) -> Result<u8, AppError> {
        if s.is_empty() {
            return Err(AppError("inner empty".to_owned()));
        }
        Ok(s.parse::<u8>()?)
    }
    let closure = #[dd_span(step = "closure")]
    |s: &str| -> Result<u8, AppError> { Ok(s.parse::<u8>()? + 1) };
    Ok(inner(s)? + closure(s)?)
}

mod entry {
    use super::{lookup, AppError};
    use ddspan::dd_span;

    /// `main` (no arguments) flushes the tracer before it returns.
    #[dd_span]
    pub(crate) fn main() -> Result<(), Box<dyn std::error::Error>> {
        let key = lookup("main")?;
        if key.len() > 100 {
            return Err(Box::new(AppError("long".to_owned())));
        }
        Ok(())
    }
}

// A body that never reaches its end compiles without warnings (see also
// `tests/ui/pass/rewrite_edges.rs`).

#[dd_span]
fn diverges_panic(text: &str) -> Result<u8, AppError> {
    panic!("{text}")
}

#[dd_span]
fn loop_with_exits(items: &[&str]) -> Result<u32, AppError> {
    let mut i = 0;
    loop {
        let value: u32 = items[i].parse()?;
        if value == 0 {
            return Ok(i as u32);
        }
        i += 1;
    }
}

/// An error whose `From` records where the conversion happened.
#[derive(Debug, PartialEq)]
pub(crate) struct Located(pub(crate) u32);

impl From<Code> for Located {
    #[track_caller]
    fn from(_: Code) -> Self {
        Located(std::panic::Location::caller().line())
    }
}

const LOCATED_TOKENS: u32 = line!();
#[dd_span]
fn located_tokens(r: Result<u8, Code>) -> Result<u8, Located> {
    let v = r?;
    Ok(v)
}

const LOCATED_PARSED: u32 = line!();
#[dd_span]
fn located_parsed(r: Result<u8, Code>) -> Result<u8, Located> {
    let v = r?;
    assert!(v < 200);
    Ok(v)
}

fn errors(spans: &[FinishedSpan], name: &str) -> Vec<Option<String>> {
    let mut found: Vec<Option<String>> = spans
        .iter()
        .filter(|s| s.name == name)
        .map(|s| {
            assert_eq!(s.error, s.meta.contains_key("error.type"), "{s:?}");
            s.meta.get("error.type").cloned()
        })
        .collect();
    found.sort();
    found
}

fn app_errors(spans: &[FinishedSpan], name: &str, ok: usize, err: usize) {
    let mut expected = vec![None; ok];
    expected.extend(std::iter::repeat_n(
        Some(std::any::type_name::<AppError>().to_owned()),
        err,
    ));
    expected.sort();
    assert_eq!(errors(spans, name), expected, "{name}");
}

#[test]
fn returns_and_question_marks_behave_as_without_the_macro() {
    let (_guard, spans) = capture();
    same!(closures(&["1", "0"]));
    same!(closures(&["x"]));
    same!(closures(&[]));
    same!(async_blocks("3"));
    same!(async_blocks("30"));
    same!(async_blocks("x"));
    same!(nested_items("1"));
    same!(nested_items(""));
    same!(nested_items("5"));
    same!(loops(&["12345", "1"]));
    same!(loops(&["1", "x"]));
    same!(loops(&["stop", "1"]));
    same!(loops(&["ret"]));
    same!(loops(&["1", ""]));
    same!(loops(&[""]));
    for n in 0..6 {
        same!(coercions(n));
    }
    let bytes = vec![1, 2];
    same!(slices(&bytes, false));
    same!(slices(&bytes, true));
    let empty = Vec::new();
    same!(slices(&empty, false));
    let good: [Result<u8, Code>; 2] = [Ok(4), Ok(2)];
    let bad: [Result<u8, Code>; 2] = [Ok(4), Err(Code(1))];
    same!(postfix(&good, (Ok(1), 0), "7", 1));
    same!(postfix(&bad, (Ok(1), 0), "7", 1));
    same!(postfix(&good, (Err(Code(2)), 0), "7", 0));
    same!(postfix(&good, (Ok(1), 0), "255", 0));
    same!(postfix(&good, (Ok(1), 0), "", 0));
    same!(postfix(&[Err(Code(5))], (Ok(1), 0), "1", 0));
    same!(block_like("3", true));
    same!(block_like("3", false));
    same!(block_like("x", true));
    same!(block_like("x", false));
    same!(in_macros("1", "2"));
    same!(in_macros("1", "x"));
    same!(in_macros("x", "2"));
    same!(in_macros("7", "2"));
    same!(hidden_in_std_macro("1"));
    same!(hidden_in_std_macro("x"));
    same!(hidden_return_in_std_macro("1"));
    same!(hidden_return_in_std_macro(""));
    same!(plain_macro_and_return("r"));
    same!(plain_macro_and_return("x"));
    same!(plain_macro_and_return("4"));
    same!(operators(&good, "3"));
    same!(operators(&bad, "3"));
    same!(operators(&good, "x"));
    same!(let_else(None));
    same!(let_else(Some("x")));
    same!(let_else(Some("0")));
    same!(let_else(Some("1")));
    same!(let_else(Some("2")));
    same!(positions(&good, "ab"));
    same!(positions(&good, ""));
    same!(positions(&[Err(Code(3)), Ok(1)], "ab"));
    same!(inference("3", &mut vec![1]));
    same!(inference("3", &mut Vec::new()));
    same!(inference("x", &mut vec![1]));
    same!(inference("", &mut vec![1]));
    let packed = |value| Packed { tag: 1, value };
    same!(places(packed(Ok(2)), Box::new(Ok("t".to_owned()))));
    same!(places(packed(Err(Code(1))), Box::new(Ok("t".to_owned()))));
    same!(places(packed(Ok(2)), Box::new(Err(Code(2)))));
    same!(err_statement(true));
    same!(err_statement(false));
    for n in 0..5 {
        same!(return_values(n));
    }
    same!(user_names(&[Ok(1), Ok(2)]));
    same!(user_names(&[Ok(1), Ok(6)]));
    same!(user_names(&[Ok(1), Ok(5)]));
    same!(user_names(&[Ok(1), Err(Code(4))]));
    same!(raw_idents(Ok(2)));
    same!(raw_idents(Ok(0)));
    same!(raw_idents(Err(Code(1))));
    same!(drops(Noisy("first"), "a"));
    same!(drops(Noisy("first"), "ab"));
    same!(drops(Noisy("first"), ""));
    for text in ["5", "", "x", "300"] {
        let expected = generic::plain::generic::<u8, AppError>(text);
        assert_eq!(generic::generic::<u8, AppError>(text), expected);
    }
    same!(io_result("/"));
    same!(io_result("/nonexistent/ddspan"));
    same!(io_result(file!()));
    same!(anyhow_result("1") => |r: anyhow::Result<u8>| r.map_err(|e| format!("{e:#}")));
    same!(anyhow_result("0") => |r: anyhow::Result<u8>| r.map_err(|e| format!("{e:#}")));
    same!(anyhow_result("x") => |r: anyhow::Result<u8>| r.map_err(|e| format!("{e:#}")));
    same!(impl_trait("1"));
    same!(impl_trait("0"));
    same!(impl_trait("x"));
    same!(alias_returns(0));
    same!(alias_returns(1));
    same!(alias_question(""));
    same!(alias_question("x"));
    same!(alias_question("2"));
    same!(attributes(""));
    same!(attributes("x"));
    same!(attributes("3"));
    let value: Result<u8, Code> = Ok(3);
    let error: Result<u8, Code> = Err(Code(1));
    same!(extern_c(value));
    same!(extern_c(error));
    let (p, t) = (
        track_caller::plain::track_caller,
        track_caller::track_caller,
    );
    let (expected, actual, here) = (p(false), t(false), line!());
    assert_eq!(
        (actual, expected),
        (Ok(here), Ok(here)),
        "the caller's line"
    );
    assert_eq!(t(true), p(true));
    let spans = spans.take();

    app_errors(&spans, "closures", 2, 1);
    app_errors(&spans, "async_blocks", 1, 2);
    app_errors(&spans, "nested_items", 2, 1);
    app_errors(&spans, "loops", 3, 3);
    app_errors(&spans, "block_like", 2, 2);
    app_errors(&spans, "in_macros", 1, 3);
    app_errors(&spans, "hidden_in_std_macro", 1, 1);
    app_errors(&spans, "hidden_return_in_std_macro", 1, 1);
    app_errors(&spans, "plain_macro_and_return", 1, 2);
    app_errors(&spans, "operators", 1, 2);
    app_errors(&spans, "let_else", 3, 2);
    app_errors(&spans, "positions", 1, 2);
    app_errors(&spans, "inference", 2, 2);
    app_errors(&spans, "places", 1, 2);
    app_errors(&spans, "err_statement", 1, 1);
    app_errors(&spans, "return_values", 4, 1);
    app_errors(&spans, "user_names", 3, 1);
    app_errors(&spans, "raw_idents", 1, 2);
    app_errors(&spans, "drops", 2, 1);
    app_errors(&spans, "generic", 1, 3);
    app_errors(&spans, "impl_trait", 1, 2);
    app_errors(&spans, "alias_returns", 1, 1);
    app_errors(&spans, "alias_question", 1, 2);
    app_errors(&spans, "attributes", 1, 2);
    app_errors(&spans, "extern_c", 1, 1);
    app_errors(&spans, "track_caller", 1, 1);
    app_errors(&spans, "postfix", 1, 5);
    let boxed = std::any::type_name::<Box<dyn Error + Send + Sync>>().to_owned();
    let mut expected = vec![None, None];
    expected.extend(std::iter::repeat_n(Some(boxed), 4));
    expected.sort();
    assert_eq!(errors(&spans, "coercions"), expected);
    assert_eq!(
        errors(&spans, "slices"),
        [
            None,
            None,
            Some(std::any::type_name::<AppError>().to_owned())
        ]
    );
    let io = Some(std::any::type_name::<std::io::Error>().to_owned());
    assert_eq!(errors(&spans, "io_result"), [None, io.clone(), io]);
    let anyhow = Some("anyhow::Error".to_owned());
    assert_eq!(
        errors(&spans, "anyhow_result"),
        [None, anyhow.clone(), anyhow]
    );
}

#[test]
fn methods_trait_defaults_and_nested_instrumentation() {
    use defaults::Source;

    let (_guard, spans) = capture();
    assert_eq!("7".parse::<Parsed>().map(|p| p.0), Ok(7));
    assert!("0".parse::<Parsed>().is_err());
    assert_eq!(
        "x".parse::<Parsed>().err(),
        Some(AppError("invalid digit found in string".to_owned()))
    );
    let mut account = Account::named("9").unwrap();
    assert!(Account::named("0").is_err());
    *account.withdraw("4").unwrap() += 100;
    assert_eq!(account.balance, 105);
    assert_eq!(
        account.withdraw("200").err(),
        Some(AppError("insufficient".to_owned()))
    );
    assert!(account.withdraw("x").is_err());
    assert_eq!(account.close(false), Ok(vec![4]));
    assert_eq!("12".number(), Ok(12));
    assert!("".number().is_err());
    assert!("z".number().is_err());
    assert_eq!(Shown(0).to_string(), "<zero>");
    assert_eq!(Shown(4).to_string(), "<4>");
    assert_eq!(nested_instrumented("2"), Ok(5));
    assert!(nested_instrumented("").is_err());
    assert!(nested_instrumented("x").is_err());
    assert!(entry::main().is_ok());
    assert_eq!(strict::strict("1"), Ok(1));
    assert_eq!(shadowed::tokens(Ok(1)), Ok(2));
    assert!(shadowed::tokens(Ok(0)).is_err());
    assert!(shadowed::tokens(Err(Code(1))).is_err());
    assert_eq!(shadowed::parsed(Ok(1)), Ok(2));
    assert!(shadowed::parsed(Ok(0)).is_err());
    assert!(shadowed::parsed(Err(Code(1))).is_err());
    assert_eq!(Finder.visit(&[1, 7, 9]), std::ops::ControlFlow::Break(7));
    assert_eq!(Finder.visit(&[1]), std::ops::ControlFlow::Continue(()));
    assert_eq!(First.visit(&[]), None);
    assert_eq!(First.visit(&[4]), Some(4));
    assert_eq!(shown(0).to_string(), "zero");
    assert_eq!(shown(3).to_string(), "3");
    assert!(std::panic::catch_unwind(|| diverges_panic("boom")).is_err());
    assert_eq!(loop_with_exits(&["3", "0"]), Ok(1));
    assert!(loop_with_exits(&["3", "x"]).is_err());
    take_log();
    let spans = spans.take();

    app_errors(&spans, "from_str", 2, 3);
    app_errors(&spans, "named", 1, 1);
    app_errors(&spans, "withdraw", 1, 2);
    app_errors(&spans, "close", 1, 0);
    app_errors(&spans, "number", 1, 2);
    app_errors(&spans, "inner", 1, 2);
    app_errors(&spans, "closure", 1, 0);
    app_errors(&spans, "nested_instrumented", 1, 2);
    app_errors(&spans, "loop_with_exits", 1, 1);
    assert_eq!(errors(&spans, "fmt"), [None, None]);
    assert_eq!(errors(&spans, "main"), [None]);
    assert_eq!(errors(&spans, "strict"), [None]);
    app_errors(&spans, "tokens", 1, 2);
    app_errors(&spans, "parsed", 1, 2);
    assert_eq!(errors(&spans, "shown"), [None, None]);
    assert_eq!(errors(&spans, "visit"), [None, None, None, None]);
    assert_eq!(errors(&spans, "diverges_panic"), [Some("panic".to_owned())]);
}

#[test]
fn a_track_caller_from_sees_the_question_mark() {
    let (_guard, spans) = capture();
    assert_eq!(
        located_tokens(Err(Code(1))),
        Err(Located(LOCATED_TOKENS + 3))
    );
    assert_eq!(
        located_parsed(Err(Code(1))),
        Err(Located(LOCATED_PARSED + 3))
    );
    assert_eq!(spans.take().iter().filter(|s| s.error).count(), 2);
}

/// User items named as what the expansion uses.
mod shadowed {
    #![allow(dead_code, non_snake_case)]
    use ddspan::dd_span;

    struct Ok;
    struct Err;
    struct Some;
    mod core {}
    fn From() {}
    type Result<T> = ::core::result::Result<T, super::AppError>;

    #[dd_span]
    pub(crate) fn tokens(a: ::core::result::Result<u8, super::Code>) -> Result<u8> {
        if a == ::core::result::Result::Ok(0) {
            return ::core::result::Result::Err(super::AppError("zero".to_owned()));
        }
        ::core::result::Result::Ok(a? + 1)
    }

    #[dd_span]
    pub(crate) fn parsed(a: ::core::result::Result<u8, super::Code>) -> Result<u8> {
        let double = |x: u8| x * 2;
        if a == ::core::result::Result::Ok(0) {
            return ::core::result::Result::Err(super::AppError("zero".to_owned()));
        }
        ::core::result::Result::Ok(double(a?))
    }
}

/// An associated type named `Result` is no `Result`: its `?` is the
/// type's own.
pub(crate) trait Visit {
    type Result;

    fn visit(&self, items: &[u8]) -> Self::Result;
}

struct Finder;

impl Visit for Finder {
    type Result = std::ops::ControlFlow<u8>;

    #[dd_span]
    fn visit(&self, items: &[u8]) -> Self::Result {
        for item in items {
            check(*item)?;
        }
        std::ops::ControlFlow::Continue(())
    }
}

fn check(item: u8) -> std::ops::ControlFlow<u8> {
    if item > 5 {
        std::ops::ControlFlow::Break(item)
    } else {
        std::ops::ControlFlow::Continue(())
    }
}

struct First;

impl Visit for First {
    type Result = Option<u8>;

    #[dd_span]
    fn visit(&self, items: &[u8]) -> Self::Result {
        let first = items.first()?;
        Some(*first)
    }
}

/// Not a `Result`: `return` stays as written.
#[dd_span]
fn shown(n: u8) -> impl Display {
    if n == 0 {
        return "zero".to_owned();
    }
    n.to_string()
}

/// A function with exits adds no lint attribute a `forbid` would reject.
#[forbid(unreachable_code)]
mod strict {
    use super::AppError;

    #[ddspan::dd_span]
    pub(crate) fn strict(s: &str) -> Result<u8, AppError> {
        let value = s.parse::<u8>()?;
        Ok(value)
    }
}

//! Plan: how one function is instrumented, decided once from its shape
//! and its body. `emit.rs` writes each plan out.

use proc_macro2::TokenStream;
use quote::ToTokens;

use crate::body::{Body, Exits, FutureTail, stmts_tokens};
use crate::emit;
use crate::shape::FnShape;

pub(crate) enum Plan {
    /// Nothing follows the body (no `Err` check, not `main`), or it never
    /// returns (`-> !`): the guard, then the body as the function's tail.
    /// `return` and `?` work as written; the guard's drop ends the span.
    Guarded { body: Braced },
    /// A sync function whose `Err` is checked (its type may be a `Result`)
    /// or that flushes (`main`) after the body.
    Checked {
        body: CheckedBody,
        /// The declared type for a `let` (`shape::Output::let_type`).
        output: Option<TokenStream>,
        check_err: bool,
        flush: bool,
    },
    /// A function whose body ends in the future it returns (`async { .. }`,
    /// `Box::pin(async move { .. })` from `#[async_trait]`): the span is
    /// around that future, started when the function is called.
    FutureTail {
        leading: TokenStream,
        future: TokenStream,
        /// `Box::pin` (as written) around the instrumented future.
        boxed_by: Option<TokenStream>,
    },
    /// `async fn`: the body runs in a future of its own, whose span starts
    /// at its first poll and is active on every poll. With
    /// `parent_at_call`, the function became a `fn` returning that future,
    /// which captures the span active where it is called (its parent even
    /// when first polled on another task or thread); else (`main`, or
    /// another attribute macro that wants an `async fn`) the parent is the
    /// span active at the first poll.
    Async {
        body: Braced,
        output: Option<TokenStream>,
        check_err: bool,
        flush: bool,
        parent_at_call: bool,
        /// The arguments, moved into the future as an `async fn` moves them.
        moved: Vec<crate::shape::Moved>,
    },
}

/// How the body of a [`Plan::Checked`] reaches the check after it.
pub(crate) enum CheckedBody {
    /// It leaves only at its end: the body as a block. It may never end
    /// (`todo!()`, a server's loop), so what follows may be unreachable.
    NoExits(Braced),
    /// Its `return`s and `?`s became `break`s out of a labeled block (no
    /// closure: it compiles faster).
    Labeled(Braced),
    /// Exits that cannot be rewritten (a macro may hide one; a `?` under a
    /// type not spelled `Result`; a type macro that may hide an `impl Trait`): the body
    /// runs in a closure, which catches them.
    Closure(Braced),
}

/// Statements in the user's braces.
pub(crate) struct Braced {
    pub(crate) stmts: TokenStream,
    pub(crate) braces: proc_macro2::Span,
}

/// The plan for a function that may be instrumented (not a `const fn`).
pub(crate) fn decide(shape: &mut FnShape, body: Body) -> Plan {
    let output = &shape.output;
    let braces = body.braces;
    let braced = |stmts| Braced { stmts, braces };
    if shape.is_async {
        let parent_at_call = shape.parent_at_call && !shape.is_main;
        return Plan::Async {
            body: braced(body.into_stmts()),
            output: output.let_type.clone(),
            check_err: output.may_be_result,
            flush: shape.is_main,
            moved: if parent_at_call {
                std::mem::take(&mut shape.moved)
            } else {
                Vec::new()
            },
            parent_at_call,
        };
    }
    if output.never {
        return Plan::Guarded {
            body: braced(body.into_stmts()),
        };
    }
    if let Some((leading, tail)) = body.future_tail() {
        let leading = stmts_tokens(leading);
        let (future, boxed_by) = match tail {
            FutureTail::Async(future) => (future.to_token_stream(), None),
            FutureTail::BoxPin { callee, future } => {
                (future.to_token_stream(), Some(callee.to_token_stream()))
            }
        };
        return Plan::FutureTail {
            leading,
            future,
            boxed_by,
        };
    }
    if !output.may_be_result && !shape.is_main {
        return Plan::Guarded {
            body: braced(body.into_stmts()),
        };
    }
    // Breaks carry the value to a `let` of the declared type, and turn a
    // `?` into a `Result`'s `Err`: only where the type can be written and,
    // with a `?`, is spelled as a `Result`.
    let breaks_apply = |question_mark: bool| {
        output.let_type.is_some() && (!question_mark || output.spelled_result)
    };
    let checked = match body.exits {
        Exits::None => CheckedBody::NoExits(braced(body.into_stmts())),
        Exits::Visible { question_mark } if breaks_apply(question_mark) => {
            match body.into_breaks(&emit::body_label(braces)) {
                Ok(stmts) => CheckedBody::Labeled(braced(stmts)),
                // Tokens that syn cannot parse: the closure is right for
                // any body.
                Err(body) => CheckedBody::Closure(braced(body.into_stmts())),
            }
        }
        Exits::Visible { .. } | Exits::Hidden => CheckedBody::Closure(braced(body.into_stmts())),
    };
    Plan::Checked {
        body: checked,
        output: output.let_type.clone(),
        check_err: output.may_be_result,
        flush: shape.is_main,
    }
}

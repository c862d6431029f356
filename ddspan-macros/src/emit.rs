//! Emit: every token `#[dd_span]` generates, written out from a
//! [`Plan`]. Paths go through `crate = path` (default `::ddspan`) to the
//! runtime's `__private` module; locals are `__ddspan_`-prefixed at
//! mixed-site hygiene, so user code can neither see nor shadow them.
//!
//! Input:
//!
//! ```text
//! #[dd_span(db.system = "postgresql")]
//! fn load(id: u64) -> Result<User, Error> {
//!     let row = query(id)?;
//!     Ok(row.into())
//! }
//! ```
//!
//! Output ([`Plan::Checked`], its exits as breaks out of a labeled block):
//!
//! ```text
//! fn load(id: u64) -> Result<User, Error> {
//!     static __DDSPAN_SPEC: ::ddspan::__private::SpanSpec =
//!         ::ddspan::__private::SpanSpec::new("load").with_tags(&[
//!             ::ddspan::__private::StaticTag::str("db.system", "postgresql"),
//!             ::ddspan::__private::StaticTag::str("function-name", "load"),
//!         ]);
//!     let __ddspan_guard = ::ddspan::__private::LocalSpanGuard::start(&__DDSPAN_SPEC);
//!     let __ddspan_ret: Result<User, Error> = '__ddspan_body: {
//!         let row = (match (query(id)) {
//!             ::core::result::Result::Ok(__ddspan_value) => __ddspan_value,
//!             ::core::result::Result::Err(__ddspan_error) => break '__ddspan_body
//!                 ::core::result::Result::Err(::core::convert::From::from(__ddspan_error)),
//!         });
//!         Ok(row.into())
//!     };
//!     {
//!         use ::ddspan::__private::ErrorRung as _;
//!         // an `Err` marks the span; which fields, the value's type decides
//!         (&&&&::ddspan::__private::ReturnValue(&__ddspan_ret)).__ddspan_record(&__ddspan_guard);
//!     }
//!     __ddspan_ret
//! }
//! ```
//!
//! The other plans:
//! - [`Plan::Guarded`] (nothing to check after the body, or `-> !`): the
//!   static, the guard, then `{ body }` as the tail.
//! - [`CheckedBody::Closure`]: `let __ddspan_ret = call_once(move || -> Type { body });`
//!   where a macro may hide an exit or a `?` is not plainly a `Result`'s.
//! - [`Plan::Async`]: `let __ddspan_ret = instrument(async move { let
//!   __ddspan_ret: Type = async move { fake_return_edge; body }.await;
//!   check; __ddspan_ret }, start_span(&__DDSPAN_SPEC)).await;`
//! - [`Plan::FutureTail`]: the body's final `async { .. }` (or the one in
//!   `Box::pin(..)`) wrapped the same way, started when the function runs.
//! - `fn main` flushes the tracer after its span ends.
//!
//! Compile time (`scripts/compile-cost.sh`) shaped this: no closure where
//! a labeled block does, one call for the `Err` check and none where the
//! type cannot be a `Result`, and the new body is emitted as tokens, never
//! parsed again.

use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::{ExprClosure, ReturnType};

use crate::args::Format;
use crate::model::{Settings, TagValue};
use crate::plan::{Braced, CheckedBody, Plan};
use crate::shape::{FnShape, Moved};

/// Generated locals: `__ddspan_`-prefixed, at mixed-site hygiene so user
/// code can neither see nor shadow them.
pub(crate) fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// The label of the block around a body whose `return`s and `?`s became
/// `break`s, spanned at the body's braces: the labeled block is then of
/// the user's edition, as the body was (a span of this crate, edition
/// 2024, would drop the tail's temporaries before the body's locals). At
/// the user's hygiene, so its name is one no user code writes.
pub(crate) fn body_label(braces: Span) -> syn::Lifetime {
    syn::Lifetime {
        apostrophe: braces,
        ident: Ident::new("__ddspan_body_of_instrumented_fn", braces),
    }
}

/// The runtime's `__private` module, through `crate = path`.
struct Runtime(TokenStream);

impl Runtime {
    fn of(settings: &Settings) -> Runtime {
        Runtime(match &settings.krate {
            Some(path) => quote!(#path::__private),
            None => quote!(::ddspan::__private),
        })
    }
}

impl ToTokens for Runtime {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.0.to_tokens(tokens);
    }
}

/// The new statements of an instrumented function's body.
pub(crate) fn function(plan: Plan, shape: &FnShape, settings: &Settings) -> TokenStream {
    let rt = &Runtime::of(settings);
    let name = settings.function_span_name(&shape.name);
    let spec = spec(rt, &name, settings, Some(&shape.name));
    let ret = local("__ddspan_ret");
    let guard = local("__ddspan_guard");
    match plan {
        Plan::Guarded { body } => {
            let start = local_start(rt, settings);
            let tags = guard_tags(rt, settings, &guard);
            let body = braced(body);
            quote! {
                #spec
                let #guard = #start;
                #tags
                #body
            }
        }
        Plan::Async {
            body,
            output,
            check_err,
            flush: _,
            parent_at_call: true,
            moved,
        } => {
            // An `async fn` moves every argument into its future, used or
            // not (a guard argument lives until the future ends), binds
            // them there and drops them after the body, last to first.
            let moved = moved.iter().map(|moved| match moved {
                Moved::Receiver => {
                    let receiver = Ident::new("self", Span::call_site());
                    quote!(let _ = &#receiver;)
                }
                Moved::Binding {
                    name,
                    mutable: true,
                } => quote!(#[allow(unused_mut)] let mut #name = #name;),
                Moved::Binding { name, .. } => quote!(let #name = #name;),
                // Bound first, so that the future takes the argument
                // whole (`let _ = x;` alone would not move `x` in).
                Moved::Pattern { pattern, argument } => {
                    quote!(let #argument = #argument; let #pattern = #argument;)
                }
            });
            let inner = async_body(rt, settings, body, output.as_ref(), quote!(#(#moved)*));
            let annotation = output.as_ref().map(|ty| quote!(: #ty));
            let record =
                (check_err && !settings.ignore_errors).then(|| record_error(rt, &ret, None));
            quote! {
                #spec
                #rt::span_on_first_poll(
                    async move {
                        let #ret #annotation = #inner.await;
                        #record
                        #ret
                    },
                    &__DDSPAN_SPEC,
                )
            }
        }
        Plan::Async {
            body,
            output,
            check_err,
            flush,
            ..
        } => {
            let inner = async_body(rt, settings, body, output.as_ref(), TokenStream::new());
            let instrumented = instrument_future(
                rt,
                &inner,
                output.as_ref(),
                check_err && !settings.ignore_errors,
                &future_start(rt, settings),
            );
            let flush = flush.then(|| quote!(#rt::flush_before_exit();));
            quote! {
                #spec
                let #ret = #instrumented.await;
                #flush
                #ret
            }
        }
        Plan::FutureTail {
            leading,
            future,
            boxed_by,
        } => {
            let instrumented =
                instrument_future(rt, &future, None, !settings.ignore_errors, &span_local());
            let instrumented = started_first(rt, settings, &instrumented);
            let tail = match boxed_by {
                Some(callee) => quote!(#callee(#instrumented)),
                None => instrumented,
            };
            quote! {
                #spec
                #leading
                #tail
            }
        }
        Plan::Checked {
            body,
            output,
            check_err,
            flush,
        } => {
            let start = local_start(rt, settings);
            let tags = guard_tags(rt, settings, &guard);
            let record = (check_err && !settings.ignore_errors)
                .then(|| record_error(rt, &ret, Some(&guard)));
            let annotation = output.as_ref().map(|ty| quote!(: #ty));
            // A body without exits that never ends (`todo!()`, a server's
            // loop) makes what follows unreachable, as in the function as
            // written: allowed, so the attribute adds no warning. (A body
            // with exits reaches it through them; a closure always returns.)
            let allow_unreachable =
                matches!(body, CheckedBody::NoExits(_)).then(|| quote!(#[allow(unreachable_code)]));
            let value = match body {
                CheckedBody::NoExits(body) => braced(body).into_token_stream(),
                CheckedBody::Labeled(body) => {
                    let label = body_label(body.braces);
                    let body = braced(body);
                    quote!(#label: #body)
                }
                CheckedBody::Closure(body) => {
                    let output = output.as_ref().map(|ty| quote!(-> #ty));
                    let body = braced(body);
                    quote!(#rt::call_once(move || #output #body))
                }
            };
            let after = if flush {
                // `main`: the span ends (its guard drops) before the flush.
                let drop = quote_spanned!(Span::mixed_site()=> ::core::mem::drop);
                quote!({ #record #drop(#guard); #rt::flush_before_exit(); })
            } else {
                // Not `main`: there is a check, itself a block.
                record.unwrap_or_default()
            };
            quote! {
                #spec
                let #guard = #start;
                #tags
                #[allow(clippy::diverging_sub_expression)]
                let #ret #annotation = #value;
                #allow_unreachable
                #after
                #ret
            }
        }
    }
}

/// `async move { tags; fake return edge; body }`, the body in the user's
/// braces (with `arguments`, the bindings of an `async fn`'s arguments,
/// around them): the
/// block is then of the user's edition, as the `async fn`'s body was (in
/// braces of this crate, edition 2024, the tail's temporaries would drop
/// before the body's locals).
fn async_body(
    rt: &Runtime,
    settings: &Settings,
    body: Braced,
    output: Option<&TokenStream>,
    arguments: TokenStream,
) -> TokenStream {
    let fake_edge = output.map(fake_return_edge);
    let tags = active_tags(rt, settings);
    let stmts = body.stmts;
    let block = braced(Braced {
        stmts: quote!(#tags #fake_edge #stmts),
        braces: body.braces,
    });
    if arguments.is_empty() {
        return quote!(async move #block);
    }
    // The arguments bound outside the body's block: they drop after it,
    // last to first, as an `async fn`'s do.
    quote!(async move { #arguments #block })
}

/// The statements in the user's braces, whose span the group keeps.
fn braced(body: Braced) -> Group {
    let mut group = Group::new(Delimiter::Brace, body.stmts);
    group.set_span(body.braces);
    group
}

/// The new body of a `#[dd_span]` closure (`enclosing`: the function it is
/// in, for its default name).
pub(crate) fn closure(
    closure: &ExprClosure,
    settings: &Settings,
    enclosing: Option<&str>,
) -> TokenStream {
    let rt = &Runtime::of(settings);
    let name = settings.closure_span_name(enclosing);
    let spec = spec(rt, &name, settings, None);
    let ret = local("__ddspan_ret");
    let body = &closure.body;
    let check_err = !settings.ignore_errors;
    if closure.asyncness.is_some() {
        let tags = active_tags(rt, settings);
        let instrumented = instrument_future(
            rt,
            &quote!(async move { #tags #body }),
            None,
            check_err,
            &future_start(rt, settings),
        );
        quote!({ #spec #instrumented.await })
    } else if let syn::Expr::Async(_) = &**body {
        let instrumented =
            instrument_future(rt, &body.to_token_stream(), None, check_err, &span_local());
        let instrumented = started_first(rt, settings, &instrumented);
        quote!({ #spec #instrumented })
    } else {
        // Rust infers an unannotated closure's type from its use, too late
        // for the macro: the `Err` check needs the return type written.
        let guard = local("__ddspan_guard");
        let (record, annotation) = match &closure.output {
            ReturnType::Type(_, ty) if check_err => {
                (record_error(rt, &ret, Some(&guard)), quote!(: #ty))
            }
            ReturnType::Type(_, ty) => (TokenStream::new(), quote!(: #ty)),
            ReturnType::Default => (TokenStream::new(), TokenStream::new()),
        };
        let start = local_start(rt, settings);
        let tags = guard_tags(rt, settings, &guard);
        quote!({
            #spec
            let #guard = #start;
            #tags
            let #ret #annotation = #rt::call_once(|| #body);
            #record
            #ret
        })
    }
}

/// `static __DDSPAN_SPEC: SpanSpec = ...;` for a span of this name.
fn spec(rt: &Runtime, name: &str, settings: &Settings, function: Option<&str>) -> TokenStream {
    let mut setters = TokenStream::new();
    if let Some(resource) = &settings.resource {
        setters.extend(quote!(.with_resource(#resource)));
    }
    if let Some(service) = &settings.service {
        setters.extend(quote!(.with_service(#service)));
    }
    if let Some(span_type) = &settings.span_type {
        setters.extend(quote!(.with_span_type(#span_type)));
    }
    let mut tags: Vec<TokenStream> = settings
        .tags
        .iter()
        .filter_map(|tag| {
            let key = &tag.key;
            match &tag.value {
                TagValue::Str(text) => Some(quote!(#rt::StaticTag::str(#key, #text))),
                TagValue::Number(value) => {
                    let value = proc_macro2::Literal::f64_suffixed(*value);
                    Some(quote!(#rt::StaticTag::number(#key, #value)))
                }
                TagValue::Dynamic { .. } => None,
            }
        })
        .collect();
    if let Some(function) = function {
        if !settings.tags.iter().any(|tag| tag.key == "function-name") {
            tags.push(quote!(#rt::StaticTag::str("function-name", #function)));
        }
    }
    if !tags.is_empty() {
        setters.extend(quote!(.with_tags(&[#(#tags),*])));
    }
    quote! {
        static __DDSPAN_SPEC: #rt::SpanSpec = #rt::SpanSpec::new(#name) #setters;
    }
}

/// The values of the tags computed from arguments, each as the
/// `Option<TagValue>` the runtime's `tag*` functions take, with its key.
fn dynamic_tags(rt: &Runtime, settings: &Settings) -> Vec<(String, TokenStream)> {
    settings
        .tags
        .iter()
        .filter_map(|tag| {
            let TagValue::Dynamic { format, expr } = &tag.value else {
                return None;
            };
            // `&expr` where the expression binds tighter than `&`; else in
            // parentheses (which would draw `unused_parens` around a path).
            let operand = match expr {
                syn::Expr::Path(_)
                | syn::Expr::Field(_)
                | syn::Expr::MethodCall(_)
                | syn::Expr::Call(_)
                | syn::Expr::Index(_)
                | syn::Expr::Lit(_)
                | syn::Expr::Paren(_)
                | syn::Expr::Macro(_)
                | syn::Expr::Tuple(_) => expr.to_token_stream(),
                _ => quote!((#expr)),
            };
            let span = syn::spanned::Spanned::span(expr);
            // Spanned at the user's expression: a type that is no tag value
            // is reported there.
            let value = match format {
                None => quote_spanned!(span=> #rt::AsTagValue::as_tag_value(&#operand)),
                Some(Format::Display(_)) => quote_spanned!(span=> #rt::display(&#operand)),
                Some(Format::Debug(_)) => quote_spanned!(span=> #rt::debug(&#operand)),
            };
            Some((tag.key.clone(), value))
        })
        .collect()
}

/// Tags computed from arguments on the guard's span, when it records.
fn guard_tags(rt: &Runtime, settings: &Settings, guard: &Ident) -> TokenStream {
    let tags = dynamic_tags(rt, settings);
    if tags.is_empty() {
        return TokenStream::new();
    }
    let calls = tags
        .iter()
        .map(|(key, value)| quote!(#rt::tag(&#guard, #key, #value);));
    quote! {
        if #guard.is_recording() {
            #(#calls)*
        }
    }
}

/// Tags computed from arguments on the active span: a future's, the first
/// thing its body does.
fn active_tags(rt: &Runtime, settings: &Settings) -> TokenStream {
    let calls = dynamic_tags(rt, settings)
        .into_iter()
        .map(|(key, value)| quote!(#rt::tag_active(#key, #value);));
    quote!(#(#calls)*)
}

/// The local holding a span started before the future it times is made.
fn span_local() -> TokenStream {
    local("__ddspan_span").into_token_stream()
}

/// `{ let span = start; tags; future }`: the span starts (and its tags are
/// evaluated, from the arguments) before the future moves them.
fn started_first(rt: &Runtime, settings: &Settings, future: &TokenStream) -> TokenStream {
    let span = span_local();
    let start = future_start(rt, settings);
    let calls = dynamic_tags(rt, settings)
        .into_iter()
        .map(|(key, value)| quote!(#rt::tag_span(&#span, #key, #value);));
    quote!({
        let #span = #start;
        #(#calls)*
        #future
    })
}

/// How a span on this thread starts: under the active span, or `child_of`.
fn local_start(rt: &Runtime, settings: &Settings) -> TokenStream {
    match &settings.child_of {
        None => quote!(#rt::LocalSpanGuard::start(&__DDSPAN_SPEC)),
        Some(parent) => quote!(#rt::LocalSpanGuard::start_child_of(
            &__DDSPAN_SPEC,
            #rt::parent_from(#parent),
        )),
    }
}

/// How a future's span starts: under the active span, or `child_of`.
fn future_start(rt: &Runtime, settings: &Settings) -> TokenStream {
    match &settings.child_of {
        None => quote!(#rt::start_span(&__DDSPAN_SPEC)),
        Some(parent) => quote!(#rt::start_span_child_of(
            &__DDSPAN_SPEC,
            #rt::parent_from(#parent),
        )),
    }
}

/// Marks the span when the value is an `Err` (which fields depends on the
/// value's type): the guard's span, else the active one (a future's).
fn record_error(rt: &Runtime, value: &Ident, guard: Option<&Ident>) -> TokenStream {
    let call = match guard {
        Some(guard) => quote!(__ddspan_record(&#guard)),
        None => quote!(__ddspan_record_active()),
    };
    quote! {
        {
            #[allow(unused_imports)]
            use #rt::ErrorRung as _;
            (&&&&#rt::ReturnValue(&#value)).#call;
        }
    }
}

/// `instrument(async move { let ret = <future>.await; check; ret }, span)`:
/// the span is started here and active on every poll of the future.
/// `output`, when the type can be named, makes the value's type known
/// before the `Err` check asks it.
fn instrument_future(
    rt: &Runtime,
    future: &TokenStream,
    output: Option<&TokenStream>,
    check_err: bool,
    start: &TokenStream,
) -> TokenStream {
    let ret = local("__ddspan_ret");
    let record = check_err.then(|| record_error(rt, &ret, None));
    let annotation = output.map(|ty| quote!(: #ty));
    quote! {
        #rt::instrument(
            async move {
                let #ret #annotation = #future.await;
                #record
                #ret
            },
            #start,
        )
    }
}

/// `if false { return loop {} as Type }`: inference sees the declared type
/// inside an `async fn`'s own future, so `?` converts into its error type.
fn fake_return_edge(output: &TokenStream) -> TokenStream {
    let fake = local("__ddspan_fake_return");
    quote! {
        #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::empty_loop, clippy::let_unit_value)]
        if false {
            let #fake: #output = loop {};
            return #fake;
        }
    }
}

/// `break 'label`, spanned like the `return` it replaces.
pub(crate) fn break_to(label: &syn::Lifetime, span: Span) -> TokenStream {
    let mut tokens = TokenStream::new();
    tokens.extend([TokenTree::Ident(Ident::new(
        "break",
        Span::mixed_site().located_at(span),
    ))]);
    label.to_tokens(&mut tokens);
    tokens
}

/// `(match operand { Ok(v) => v, Err(e) => break 'label Err(From::from(e)) })`
/// for `operand?`, spanned like the `?`. The parentheses keep it one operand
/// wherever the `?` was (`x?.len()` at the start of a statement).
pub(crate) fn try_to_match(operand: TokenStream, label: &syn::Lifetime, span: Span) -> Group {
    let question_mark = span;
    let span = Span::mixed_site().located_at(span);
    let (value, error) = (local("__ddspan_value"), local("__ddspan_error"));
    // The operand in parentheses of ours: the user's own `(x)?` then draws
    // no `unused_parens` as a `match` scrutinee.
    let mut operand = Group::new(Delimiter::Parenthesis, operand);
    operand.set_span(span);
    // The conversion call spans the `?` as user code, as `?`'s own does: a
    // `#[track_caller]` `From` (error locations) then sees the `?`, not the
    // attribute, which a macro span would make it see. Its parentheses,
    // which make the call's span, are the user's; the path in them stays
    // ours (`::core` as in edition 2021, whatever the user's). Lints then
    // see the call as user code: an error converted into its own type is
    // no finding.
    let user_parens = |tokens: TokenStream| {
        let mut group = Group::new(Delimiter::Parenthesis, tokens);
        group.set_span(question_mark);
        group
    };
    let from = user_parens(quote_spanned!(span=> ::core::convert::From::from));
    let argument = user_parens(error.to_token_stream());
    let convert = quote!(#from #argument);
    let arms = quote_spanned! {span=>
        match #operand {
            ::core::result::Result::Ok(#value) => #value,
            #[allow(clippy::useless_conversion)]
            ::core::result::Result::Err(#error) => break #label
                ::core::result::Result::Err(#convert),
        }
    };
    let mut group = Group::new(Delimiter::Parenthesis, arms);
    group.set_span(span);
    group
}

//! The rewrite of one function.
//!
//! Input:
//!
//! ```text
//! #[dd_span(db.system = "postgresql")]
//! fn load(id: u64) -> Result<User, Error> { body }
//! ```
//!
//! Output:
//!
//! ```text
//! fn load(id: u64) -> Result<User, Error> {
//!     static __DDSPAN_SPEC: SpanSpec = SpanSpec::new("load")
//!         .with_tags(&[StaticTag::str("db.system", "postgresql"),
//!                      StaticTag::str("function-name", "load")]);
//!     let __ddspan_ret = {
//!         let __ddspan_guard = LocalSpanGuard::start(&__DDSPAN_SPEC);
//!         let __ddspan_ret = call_once(move || body);   // `return` and `?` land here
//!         /* an `Err` marks the span, decided by the value's type */
//!         __ddspan_ret
//!     };
//!     __ddspan_ret
//! }
//! ```
//!
//! `async fn`: the body runs in a future whose span (a child of the span
//! active when it is first polled) is active on every poll. A non-async
//! function whose body ends in an `async` block or `Box::pin(async ...)`
//! (what `#[async_trait]` generates) gets the span around that future,
//! started when the function is called. `fn main` flushes the tracer before
//! it returns.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::{Block, Expr, ExprCall, Ident, Item, ReturnType, Signature, Stmt, TraitItemFn, Type};

use crate::closure;
use crate::errors::Errors;
use crate::settings::Settings;

pub(crate) fn dd_span(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let settings = Settings::parse(args, &mut errors);
    let rewritten = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(mut function)) => {
            instrument_fn(&function.sig, &mut function.block, &settings, &mut errors);
            function.into_token_stream()
        }
        Ok(Item::Impl(_) | Item::Mod(_)) if settings.child_of.is_some() => {
            errors.push(syn::Error::new_spanned(
                settings.child_of.as_ref(),
                "`child_of` names one function's parent; put it on that function",
            ));
            item.clone()
        }
        Ok(Item::Impl(block)) => crate::container::rewrite_impl(block, &settings, &mut errors),
        Ok(Item::Mod(module)) if module.content.is_some() => {
            crate::container::rewrite_mod(module, &settings, &mut errors)
        }
        Ok(Item::Mod(module)) => {
            errors.push(syn::Error::new_spanned(
                &module.ident,
                "#[dd_span] on a module needs its items inline (`mod name { ... }`)",
            ));
            item.clone()
        }
        Ok(Item::Verbatim(_)) | Err(_) => match syn::parse2::<TraitItemFn>(item.clone()) {
            Ok(method) if method.default.is_none() => {
                errors.push(syn::Error::new_spanned(
                    &method.sig,
                    "#[dd_span] needs a function body: a span times the body, and this method has none",
                ));
                item.clone()
            }
            // Not an item this attribute can read: pass it through untouched
            // so rustc, not the macro, reports what is wrong with it.
            _ => item.clone(),
        },
        Ok(other) => {
            errors.push(syn::Error::new_spanned(
                item_kind_tokens(&other),
                "#[dd_span] applies to functions, methods, closures, `impl` blocks and inline modules",
            ));
            item.clone()
        }
    };
    if errors.is_empty() {
        rewritten
    } else {
        // The original item, so callers see no follow-on errors; without our
        // attributes on statements and closures, which stable Rust rejects.
        let errors = errors.into_compile_errors();
        let item = closure::strip_expression_attributes(item);
        quote!(#errors #item)
    }
}

/// The tokens that say what kind of item this is (`struct Name`, `const X`).
fn item_kind_tokens(item: &Item) -> TokenStream {
    match item {
        Item::Struct(s) => {
            let (token, ident) = (&s.struct_token, &s.ident);
            quote!(#token #ident)
        }
        Item::Enum(e) => {
            let (token, ident) = (&e.enum_token, &e.ident);
            quote!(#token #ident)
        }
        Item::Const(c) => {
            let (token, ident) = (&c.const_token, &c.ident);
            quote!(#token #ident)
        }
        Item::Static(s) => {
            let (token, ident) = (&s.static_token, &s.ident);
            quote!(#token #ident)
        }
        other => other.to_token_stream(),
    }
}

/// Generated locals: `__ddspan_`-prefixed, at mixed-site hygiene so user
/// code can neither see nor shadow them.
pub(crate) fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// Rewrites a function's body in place (errors are collected, and the body
/// is left as it was when the function cannot be instrumented).
pub(crate) fn instrument_fn(
    sig: &Signature,
    block: &mut Block,
    settings: &Settings,
    errors: &mut Errors,
) {
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            "#[dd_span] cannot instrument a `const fn`: a span needs a clock at run time",
        ));
        return;
    }
    let fn_name = sig.ident.to_string();
    closure::rewrite_closures(block, &fn_name, errors);
    let name = settings
        .name
        .as_ref()
        .map_or_else(|| fn_name.clone(), syn::LitStr::value);
    let spec = spec_item(&name, settings, Some(&fn_name));
    let flush = (fn_name == "main" && sig.inputs.is_empty())
        .then(|| quote!(::ddspan::__private::flush_before_exit();));
    let ret = local("__ddspan_ret");
    let local_start = settings.local_start();
    let future_start = settings.future_start();

    let body = if sig.asyncness.is_some() {
        let inner = async_inner(block, fake_return_edge(&sig.output));
        let instrumented = instrument_future(
            &inner,
            &ret,
            nameable_output(&sig.output).as_ref(),
            may_be_result(&sig.output),
            &future_start,
        );
        quote! {
            #spec
            let #ret = #instrumented.await;
            #flush
            #ret
        }
    } else if returns_never(&sig.output) {
        let guard = local("__ddspan_guard");
        quote! {
            #spec
            let #guard = #local_start;
            #block
        }
    } else if let Some(tail) = future_tail(block) {
        let stmts = &block.stmts[..block.stmts.len() - 1];
        let tail = match tail {
            FutureTail::Async(future) => {
                instrument_future(&future.to_token_stream(), &ret, None, true, &future_start)
            }
            FutureTail::BoxPin { callee, future } => {
                let instrumented =
                    instrument_future(&future.to_token_stream(), &ret, None, true, &future_start);
                quote!(#callee(#instrumented))
            }
        };
        quote! {
            #spec
            #(#stmts)*
            #tail
        }
    } else {
        let guard = local("__ddspan_guard");
        let record =
            may_be_result(&sig.output).then(|| record_error(&ret, &quote!(#guard.record_error)));
        let output = nameable_output(&sig.output);
        let start = quote!(let #guard = #local_start;);
        if record.is_none() && flush.is_none() {
            // Nothing to do after the body: it stays the function's tail, and
            // `return` and `?` work as written (the guard ends the span).
            quote! {
                #spec
                #start
                #block
            }
        } else {
            // `return` and `?` would skip the `Err` check or the flush: a
            // closure catches them. Its declared type makes a wrong body
            // report on the user's expression and tells the check the type.
            // A body that cannot leave early needs no closure (it compiles
            // faster).
            let body = if exits_early(block) {
                let output = output.map(|ty| quote!(-> #ty));
                quote!(::ddspan::__private::call_once(move || #output #block))
            } else {
                return_body(block, output.map(|ty| quote!(: #ty)))
            };
            quote! {
                #spec
                let #ret = {
                    #start
                    let #ret = #body;
                    #record
                    #ret
                };
                #flush
                #ret
            }
        }
    };
    // Keep the user's braces: the item's span then lies wholly in user code,
    // so lints such as dead_code still report on it.
    // The new body is emitted as tokens, not parsed again (compile time).
    block.stmts = vec![Stmt::Expr(Expr::Verbatim(body), None)];
}

/// `static __DDSPAN_SPEC: SpanSpec = ...;` for a span of this name.
pub(crate) fn spec_item(name: &str, settings: &Settings, function: Option<&str>) -> TokenStream {
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
        .map(|(key, value)| match value {
            crate::attr::Value::Str(lit) => quote!(::ddspan::__private::StaticTag::str(#key, #lit)),
            crate::attr::Value::Number { value, .. } => {
                let value = proc_macro2::Literal::f64_suffixed(*value);
                quote!(::ddspan::__private::StaticTag::number(#key, #value))
            }
            crate::attr::Value::Parent(_) => TokenStream::new(),
        })
        .collect();
    if let Some(function) = function {
        if !settings.tags.iter().any(|(k, _)| k == "function-name") {
            tags.push(quote!(::ddspan::__private::StaticTag::str("function-name", #function)));
        }
    }
    if !tags.is_empty() {
        setters.extend(quote!(.with_tags(&[#(#tags),*])));
    }
    quote! {
        static __DDSPAN_SPEC: ::ddspan::__private::SpanSpec =
            ::ddspan::__private::SpanSpec::new(#name) #setters;
    }
}

/// Marks the span through `target` (a function of `ErrorFields`) when the
/// value is an `Err`; which fields depends on the value's type.
pub(crate) fn record_error(value: &Ident, target: &TokenStream) -> TokenStream {
    let error = local("__ddspan_error");
    quote! {
        {
            #[allow(unused_imports)]
            use ::ddspan::__private::ErrorRung as _;
            if let ::core::option::Option::Some(#error) =
                (&&&::ddspan::__private::ReturnValue(&#value)).__ddspan_error()
            {
                #target(#error);
            }
        }
    }
}

/// `instrument(async move { let ret = <future>.await; record; ret }, span)`:
/// the span is started here and active on every poll of the future.
/// `output`, when the type can be named, makes the value's type known
/// before the `Err` check asks it.
pub(crate) fn instrument_future(
    future: &TokenStream,
    ret: &Ident,
    output: Option<&TokenStream>,
    check_err: bool,
    start: &TokenStream,
) -> TokenStream {
    let record =
        check_err.then(|| record_error(ret, &quote!(::ddspan::__private::set_active_error)));
    let annotation = output.map(|ty| quote!(: #ty));
    quote! {
        ::ddspan::__private::instrument(
            async move {
                let #ret #annotation = #future.await;
                #record
                #ret
            },
            #start,
        )
    }
}

/// The body of an `async fn` as its own future, with the declared return
/// type made visible to inference.
fn async_inner(block: &Block, fake_edge: TokenStream) -> TokenStream {
    let stmts = &block.stmts;
    quote!(async move { #fake_edge #(#stmts)* })
}

/// `if false { return loop {} as #ret }`, so `?` inside the body converts
/// into the declared error type. Skipped for `impl Trait`, which cannot be
/// named in a `let`.
fn fake_return_edge(output: &ReturnType) -> TokenStream {
    let ty = match output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) if contains_impl_trait(ty) => return TokenStream::new(),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    let fake = local("__ddspan_fake_return");
    quote! {
        #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::empty_loop, clippy::let_unit_value)]
        if false {
            let #fake: #ty = loop {};
            return #fake;
        }
    }
}

/// Whether a body can leave before its end (`return` or `?`), not counting
/// closures, async blocks and items inside it, which have their own.
fn exits_early(block: &Block) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_expr_return(&mut self, _: &'ast syn::ExprReturn) {
            self.0 = true;
        }
        fn visit_expr_try(&mut self, _: &'ast syn::ExprTry) {
            self.0 = true;
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {}
        fn visit_item(&mut self, _: &'ast Item) {}
        fn visit_macro(&mut self, _: &'ast syn::Macro) {
            // A macro may hide a `return` or `?`: assume it does.
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    syn::visit::Visit::visit_block(&mut finder, block);
    finder.0
}

/// The body as a value: `{ stmts }` with its type declared when it can be.
fn return_body(block: &Block, annotation: Option<TokenStream>) -> TokenStream {
    match annotation {
        Some(ty) => {
            let value = local("__ddspan_value");
            quote!({ let #value #ty = #block; #value })
        }
        None => block.to_token_stream(),
    }
}

/// Whether the declared return type may be a `Result`: anything but the
/// types that plainly are not, so aliases (`io::Result<T>`) still count.
/// Skipping the `Err` check where it cannot apply keeps compile time down.
pub(crate) fn may_be_result(output: &ReturnType) -> bool {
    const NOT_RESULTS: &[&str] = &[
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
        "f32", "f64", "bool", "char", "str", "String", "Vec", "Option", "Box", "HashMap",
        "BTreeMap", "HashSet", "BTreeSet", "Cow",
    ];
    fn may_be(ty: &Type) -> bool {
        match ty {
            Type::Tuple(_) => false,
            Type::Never(_)
            | Type::ImplTrait(_)
            | Type::Array(_)
            | Type::Slice(_)
            | Type::Ptr(_) => false,
            Type::Reference(reference) => may_be(&reference.elem),
            Type::Paren(inner) => may_be(&inner.elem),
            Type::Path(path) => path
                .path
                .segments
                .last()
                .is_none_or(|last| !NOT_RESULTS.contains(&last.ident.to_string().as_str())),
            _ => true,
        }
    }
    match output {
        ReturnType::Default => false,
        ReturnType::Type(_, ty) => may_be(ty),
    }
}

/// The declared return type, when a `let` may name it (not `impl Trait`).
pub(crate) fn nameable_output(output: &ReturnType) -> Option<TokenStream> {
    match output {
        ReturnType::Default => Some(quote!(())),
        ReturnType::Type(_, ty) if contains_impl_trait(ty) => None,
        ReturnType::Type(_, ty) => Some(ty.to_token_stream()),
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    ty.to_token_stream()
        .into_iter()
        .any(|t| t.to_string() == "impl")
}

fn returns_never(output: &ReturnType) -> bool {
    matches!(output, ReturnType::Type(_, ty) if matches!(**ty, Type::Never(_)))
}

enum FutureTail<'a> {
    Async(&'a Expr),
    BoxPin { callee: &'a Expr, future: &'a Expr },
}

/// A body ending in `async { ... }` or `Box::pin(async { ... })`.
fn future_tail(block: &Block) -> Option<FutureTail<'_>> {
    let Some(Stmt::Expr(tail, None)) = block.stmts.last() else {
        return None;
    };
    match tail {
        Expr::Async(_) => Some(FutureTail::Async(tail)),
        Expr::Call(ExprCall { func, args, .. }) if args.len() == 1 => {
            let is_box_pin = matches!(&**func, Expr::Path(p)
                if p.path.segments.len() >= 2
                    && p.path.segments.iter().rev().nth(1).is_some_and(|s| s.ident == "Box")
                    && p.path.segments.last().is_some_and(|s| s.ident == "pin"));
            let future = args.first()?;
            (is_box_pin && matches!(future, Expr::Async(_))).then_some(FutureTail::BoxPin {
                callee: func,
                future,
            })
        }
        _ => None,
    }
}

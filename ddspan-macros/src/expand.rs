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
//!     let __ddspan_guard = LocalSpanGuard::start(&__DDSPAN_SPEC);
//!     let __ddspan_ret: Result<User, Error> = '__ddspan_body: { body };
//!     (&&&ReturnValue(&__ddspan_ret)).__ddspan_record(&__ddspan_guard); // an `Err` marks the span
//!     __ddspan_ret
//! }
//! ```
//!
//! In the body, `return x` becomes `break '__ddspan_body x` and `e?` becomes
//! `(match (e) { Ok(v) => v, Err(e) => break '__ddspan_body Err(From::from(e)) })`,
//! so they reach the check; closures, async blocks and items keep theirs.
//! Where that cannot be done (a `?` under a return type not spelled
//! `Result`, a macro that may hide a `return`), the body runs in a closure
//! instead: `call_once(move || -> Type { body })`. Which fields an `Err`
//! records is decided by the value's type (`ddspan_runtime::error`).
//!
//! Compile time (`scripts/compile-cost.sh`) shaped this: no closure where a
//! labeled block does, one call for the check, and a function item whose
//! body has nothing to rewrite is passed on as tokens, with only its return
//! type parsed (`syn` runs unoptimized in debug builds).
//!
//! `async fn`: the body runs in a future whose span (a child of the span
//! active when it is first polled) is active on every poll. A non-async
//! function whose body ends in an `async` block or `Box::pin(async ...)`
//! (what `#[async_trait]` generates) gets the span around that future,
//! started when the function is called. `fn main` flushes the tracer before
//! it returns.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::visit_mut::VisitMut;
use syn::{
    Block, Expr, ExprCall, Ident, Item, ReturnType, Signature, Stmt, Token, TraitItemFn, Type,
};

use crate::closure;
use crate::errors::Errors;
use crate::settings::Settings;

pub(crate) fn dd_span(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let settings = Settings::parse(args, &mut errors);
    let rewritten = match fast_fn(&item, &settings, &mut errors) {
        Some(rewritten) => rewritten,
        None => slow_item(&item, &settings, &mut errors),
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

/// A function item, read without parsing more than its signature: its
/// attributes, visibility and signature are passed on as they came, and
/// its body is parsed only when it has something to rewrite. (`syn` in a
/// debug build is a good part of the attribute's compile time.) `None`
/// when the item is not plainly a function with a body.
fn fast_fn(item: &TokenStream, settings: &Settings, errors: &mut Errors) -> Option<TokenStream> {
    let mut trees: Vec<TokenTree> = item.clone().into_iter().collect();
    let Some(TokenTree::Group(body)) = trees.pop() else {
        return None;
    };
    if body.delimiter() != Delimiter::Brace {
        return None;
    }
    // Outer attributes (doc comments too) and the visibility.
    let mut start = 0;
    while let [TokenTree::Punct(pound), TokenTree::Group(attr), ..] = &trees[start..] {
        if pound.as_char() != '#' || attr.delimiter() != Delimiter::Bracket {
            break;
        }
        start += 2;
    }
    if matches!(&trees.get(start), Some(TokenTree::Ident(i)) if i == "pub") {
        start += 1;
        if matches!(&trees.get(start), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis)
        {
            start += 1;
        }
    }
    let head = FnHead::from_tokens(&trees[start..])?;
    let verbatim = |tokens| vec![Stmt::Expr(Expr::Verbatim(tokens), None)];
    // A body that is only tokens keeps them; its `return`s and `?`s become
    // `break`s here when the rewrite will use them.
    let (stmts, exits) = match scan_body(body.stream()) {
        Scan::Plain => (verbatim(body.stream()), Some(Exits::None)),
        Scan::Exits { question_mark } => {
            let exits = Some(Exits::Visible { question_mark });
            if head.uses_breaks(question_mark) {
                match tokens_to_breaks(body.stream(), &body_label()) {
                    Some(tokens) => (verbatim(tokens), exits),
                    None => (parse_stmts(&body)?, None),
                }
            } else {
                (verbatim(body.stream()), exits)
            }
        }
        Scan::Complex => (parse_stmts(&body)?, None),
    };
    let mut block = Block {
        brace_token: syn::token::Brace(body.delim_span()),
        stmts,
    };
    instrument(&head, &mut block, exits, settings, errors);
    let mut new_body = Group::new(
        Delimiter::Brace,
        block
            .stmts
            .into_iter()
            .map(|s| s.into_token_stream())
            .collect(),
    );
    new_body.set_span(body.span());
    trees.push(new_body.into());
    Some(trees.into_iter().collect())
}

fn parse_stmts(body: &Group) -> Option<Vec<Stmt>> {
    syn::parse::Parser::parse2(Block::parse_within, body.stream()).ok()
}

/// The label of the block around a body whose `return`s and `?`s became
/// `break`s.
fn body_label() -> syn::Lifetime {
    syn::Lifetime {
        apostrophe: Span::mixed_site(),
        ident: local("__ddspan_body"),
    }
}

/// Whether a body's `return`s and `?`s can become `break`s: its type can be
/// named, and a `?` works on what it is written as.
fn breaks_apply(output: &ReturnType, question_mark: bool) -> bool {
    nameable_output(output).is_some() && (!question_mark || spelled_result(output))
}

/// Any item `#[dd_span]` may be on, parsed whole.
fn slow_item(item: &TokenStream, settings: &Settings, errors: &mut Errors) -> TokenStream {
    match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(mut function)) => {
            instrument_fn(&function.sig, &mut function.block, settings, errors);
            function.into_token_stream()
        }
        Ok(Item::Impl(_) | Item::Mod(_)) if settings.child_of.is_some() => {
            errors.push(syn::Error::new_spanned(
                settings.child_of.as_ref(),
                "`child_of` names one function's parent; put it on that function",
            ));
            item.clone()
        }
        Ok(Item::Impl(block)) => crate::container::rewrite_impl(block, settings, errors),
        Ok(Item::Mod(module)) if module.content.is_some() => {
            crate::container::rewrite_mod(module, settings, errors)
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

/// What the rewrite needs to know of a function's signature.
struct FnHead {
    /// The `const` keyword, if any.
    constness: Option<Span>,
    is_async: bool,
    name: String,
    no_inputs: bool,
    output: ReturnType,
}

impl FnHead {
    fn of(sig: &Signature) -> FnHead {
        FnHead {
            constness: sig.constness.map(|c| c.span),
            is_async: sig.asyncness.is_some(),
            name: sig.ident.to_string(),
            no_inputs: sig.inputs.is_empty(),
            output: sig.output.clone(),
        }
    }

    /// `fn main()`, which flushes the tracer before it returns.
    fn is_main(&self) -> bool {
        self.name == "main" && self.no_inputs
    }

    /// Whether something follows the body of a sync function: the `Err`
    /// check or the flush.
    fn checks_after(&self) -> bool {
        may_be_result(&self.output) || self.is_main()
    }

    /// Whether a sync body's `return`s and `?`s become `break`s out of a
    /// labeled block (`instrument`'s choice, made here too so a body can
    /// be rewritten as tokens).
    fn uses_breaks(&self, question_mark: bool) -> bool {
        !self.is_async
            && !returns_never(&self.output)
            && self.checks_after()
            && breaks_apply(&self.output, question_mark)
    }

    /// Reads `const async unsafe extern "C" fn name<...>(...) -> Type where ...`
    /// from tokens, parsing only the return type. `None` for anything else.
    fn from_tokens(trees: &[TokenTree]) -> Option<FnHead> {
        let is = |tree: Option<&TokenTree>, c: char| matches!(tree, Some(TokenTree::Punct(p)) if p.as_char() == c);
        let (mut constness, mut is_async) = (None, false);
        let mut i = 0;
        loop {
            match trees.get(i)? {
                TokenTree::Ident(word) if word == "fn" => break,
                TokenTree::Ident(word) if word == "const" => constness = Some(word.span()),
                TokenTree::Ident(word) if word == "async" => is_async = true,
                TokenTree::Ident(word) if word == "unsafe" || word == "extern" => {}
                TokenTree::Literal(_) => {} // the ABI
                _ => return None,
            }
            i += 1;
        }
        let Some(TokenTree::Ident(name)) = trees.get(i + 1) else {
            return None;
        };
        i += 2;
        if is(trees.get(i), '<') {
            // Generics, up to their closing `>` (not the one of a `->`).
            let mut depth = 0_usize;
            loop {
                let arrow = is(trees.get(i.wrapping_sub(1)), '-');
                match trees.get(i)? {
                    TokenTree::Punct(p) if p.as_char() == '<' => depth += 1,
                    TokenTree::Punct(p) if p.as_char() == '>' && !arrow => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        let Some(TokenTree::Group(inputs)) = trees.get(i) else {
            return None;
        };
        if inputs.delimiter() != Delimiter::Parenthesis {
            return None;
        }
        i += 1;
        let output = if is(trees.get(i), '-') && is(trees.get(i + 1), '>') {
            let arrow = Token![->](trees[i].span());
            let end = trees[i + 2..]
                .iter()
                .position(|t| matches!(t, TokenTree::Ident(w) if w == "where"))
                .map_or(trees.len(), |p| i + 2 + p);
            let ty: Type = syn::parse2(trees[i + 2..end].iter().cloned().collect()).ok()?;
            ReturnType::Type(arrow, Box::new(ty))
        } else if trees
            .get(i)
            .is_none_or(|t| matches!(t, TokenTree::Ident(w) if w == "where"))
        {
            ReturnType::Default
        } else {
            return None;
        };
        Some(FnHead {
            constness,
            is_async,
            name: name.to_string(),
            no_inputs: inputs.stream().is_empty(),
            output,
        })
    }
}

/// Rewrites a function's body in place (errors are collected, and the body
/// is left as it was when the function cannot be instrumented).
pub(crate) fn instrument_fn(
    sig: &Signature,
    block: &mut Block,
    settings: &Settings,
    errors: &mut Errors,
) {
    instrument(&FnHead::of(sig), block, None, settings, errors);
}

/// `exits`, when known: the body is tokens, whose `return`s and `?`s are
/// already `break`s if `sig.uses_breaks(..)`.
fn instrument(
    sig: &FnHead,
    block: &mut Block,
    exits: Option<Exits>,
    settings: &Settings,
    errors: &mut Errors,
) {
    if let Some(constness) = sig.constness {
        errors.push(syn::Error::new(
            constness,
            "#[dd_span] cannot instrument a `const fn`: a span needs a clock at run time",
        ));
        return;
    }
    let fn_name = sig.name.clone();
    closure::rewrite_closures(block, &fn_name, errors);
    let name = settings
        .name
        .as_ref()
        .map_or_else(|| fn_name.clone(), syn::LitStr::value);
    let spec = spec_item(&name, settings, Some(&fn_name));
    let flush = sig
        .is_main()
        .then(|| quote!(::ddspan::__private::flush_before_exit();));
    let ret = local("__ddspan_ret");
    let local_start = settings.local_start();
    let future_start = settings.future_start();

    let body = if sig.is_async {
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
        let record = may_be_result(&sig.output).then(|| record_error(&ret, Some(&guard)));
        let start = quote!(let #guard = #local_start;);
        if !sig.checks_after() {
            // Nothing to do after the body: it stays the function's tail, and
            // `return` and `?` work as written (the guard ends the span).
            quote! {
                #spec
                #start
                #block
            }
        } else {
            // `return` and `?` would skip the `Err` check or the flush. They
            // become `break`s out of a labeled block around the body where
            // the body shows them all (no closure: it compiles faster), else
            // a closure catches them. The declared type makes a wrong body
            // report on the user's expression and tells the check the type.
            let output = nameable_output(&sig.output);
            let annotation = output.as_ref().map(|ty| quote!(: #ty));
            let found = exits.unwrap_or_else(|| body_exits(block));
            let body = match found {
                Exits::None => block.to_token_stream(),
                Exits::Visible { question_mark } if breaks_apply(&sig.output, question_mark) => {
                    debug_assert!(sig.uses_breaks(question_mark));
                    let label = body_label();
                    if exits.is_none() {
                        ExitsToBreaks { label: &label }.visit_block_mut(block);
                    }
                    quote!(#label: #block)
                }
                Exits::Visible { .. } | Exits::Hidden => {
                    let output = output.map(|ty| quote!(-> #ty));
                    quote!(::ddspan::__private::call_once(move || #output #block))
                }
            };
            // A `return` last in the body is now a `break` in this `let`.
            // What follows it is unreachable when a body without exits never
            // ends (`todo!()`, a server's loop), as it would be in the
            // function as written: allowed, so the attribute adds no warning
            // (a body with exits reaches it through them; a closure always
            // returns). For `main` the span ends (its guard drops) before the
            // flush.
            let allow = (found == Exits::None).then(|| quote!(#[allow(unreachable_code)]));
            let after = match flush {
                // Not `main`: the function may return a `Result`, so there
                // is a check, itself a block.
                None => record.unwrap_or_default(),
                Some(flush) => {
                    let drop = quote_spanned!(Span::mixed_site()=> ::core::mem::drop);
                    quote!({ #record #drop(#guard); #flush })
                }
            };
            quote! {
                #spec
                #start
                #[allow(clippy::diverging_sub_expression)]
                let #ret #annotation = #body;
                #allow
                #after
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

/// Marks the span when the value is an `Err` (which fields depends on the
/// value's type): the guard's span, else the active one (a future's).
pub(crate) fn record_error(value: &Ident, guard: Option<&Ident>) -> TokenStream {
    let call = match guard {
        Some(guard) => quote!(__ddspan_record(&#guard)),
        None => quote!(__ddspan_record_active()),
    };
    quote! {
        {
            #[allow(unused_imports)]
            use ::ddspan::__private::ErrorRung as _;
            (&&&::ddspan::__private::ReturnValue(&#value)).#call;
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
    let record = check_err.then(|| record_error(ret, None));
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

/// How a body can leave before its end (`return` or `?`), not counting
/// closures, async blocks and items inside it, which have their own.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Exits {
    /// Only at its end.
    None,
    /// Through `return` or `?` outside macros (`question_mark`: a `?`).
    Visible { question_mark: bool },
    /// Maybe through a macro, which may hide a `return` or `?`
    /// (`anyhow::bail!`) that the macro cannot rewrite.
    Hidden,
}

fn body_exits(block: &Block) -> Exits {
    struct Finder(Exits);
    impl Finder {
        fn visible(&mut self, question_mark: bool) {
            self.0 = match self.0 {
                Exits::None => Exits::Visible { question_mark },
                Exits::Visible { question_mark: q } => Exits::Visible {
                    question_mark: q || question_mark,
                },
                Exits::Hidden => Exits::Hidden,
            };
        }
    }
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_expr_return(&mut self, node: &'ast syn::ExprReturn) {
            self.visible(false);
            syn::visit::visit_expr_return(self, node);
        }
        fn visit_expr_try(&mut self, node: &'ast syn::ExprTry) {
            self.visible(true);
            syn::visit::visit_expr_try(self, node);
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {}
        fn visit_expr_const(&mut self, _: &'ast syn::ExprConst) {}
        fn visit_item(&mut self, _: &'ast Item) {}
        fn visit_macro(&mut self, mac: &'ast syn::Macro) {
            if !macro_cannot_exit(mac) {
                self.0 = Exits::Hidden;
            }
        }
    }
    let mut finder = Finder(Exits::None);
    syn::visit::Visit::visit_block(&mut finder, block);
    finder.0
}

/// Whether a macro call certainly neither returns nor uses `?`: one of the
/// standard formatting, assertion and logging macros, with no `return`,
/// `?` or call of another macro (which may hide them) among its tokens.
fn macro_cannot_exit(mac: &syn::Macro) -> bool {
    const PLAIN: &[&str] = &[
        "assert",
        "assert_eq",
        "assert_ne",
        "cfg",
        "column",
        "concat",
        "dbg",
        "debug",
        "debug_assert",
        "debug_assert_eq",
        "debug_assert_ne",
        "env",
        "eprint",
        "eprintln",
        "error",
        "file",
        "format",
        "format_args",
        "include_bytes",
        "include_str",
        "info",
        "line",
        "matches",
        "module_path",
        "option_env",
        "panic",
        "print",
        "println",
        "stringify",
        "todo",
        "trace",
        "unimplemented",
        "unreachable",
        "vec",
        "warn",
        "write",
        "writeln",
    ];
    let plain = |name: &Ident| PLAIN.contains(&name.to_string().as_str());
    fn exits(tokens: TokenStream, plain: &dyn Fn(&Ident) -> bool) -> bool {
        // `name` when the previous tokens are `name!`: the next group is
        // the arguments of a macro call (`vec![parse!(x)]`).
        let (mut previous, mut called) = (None, None);
        for tree in tokens {
            let exit = match &tree {
                TokenTree::Punct(p) => p.as_char() == '?',
                TokenTree::Ident(i) => i == "return",
                TokenTree::Group(g) => {
                    called.as_ref().is_some_and(|name| !plain(name)) || exits(g.stream(), plain)
                }
                TokenTree::Literal(_) => false,
            };
            if exit {
                return true;
            }
            called = match &tree {
                TokenTree::Punct(p) if p.as_char() == '!' => previous.take(),
                _ => None,
            };
            previous = match tree {
                TokenTree::Ident(i) => Some(i),
                _ => None,
            };
        }
        false
    }
    mac.path
        .segments
        .last()
        .is_some_and(|last| plain(&last.ident))
        && !exits(mac.tokens.clone(), &plain)
}

/// Rewrites `return value` into `break 'label value` and `expr?` into
/// `match expr { Ok(v) => v, Err(e) => break 'label Err(From::from(e)) }`
/// (what `?` does for a `Result`), outside closures, async blocks, items and
/// macros. The new tokens carry the user's spans (errors point at the `?`
/// or the `return`) at mixed-site hygiene (lints treat them as generated).
struct ExitsToBreaks<'a> {
    label: &'a syn::Lifetime,
}

impl VisitMut for ExitsToBreaks<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Closure(_) | Expr::Async(_) | Expr::Const(_) | Expr::Macro(_) => {}
            Expr::Return(node) => {
                syn::visit_mut::visit_expr_return_mut(self, node);
                let mut tokens = break_to(self.label, node.return_token.span);
                node.expr.to_tokens(&mut tokens);
                *expr = Expr::Verbatim(tokens);
            }
            Expr::Try(node) => {
                syn::visit_mut::visit_expr_try_mut(self, node);
                let operand = node.expr.to_token_stream();
                let matched = try_to_match(operand, self.label, node.question_token.span);
                *expr = Expr::Verbatim(matched.into_token_stream());
            }
            _ => syn::visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_item_mut(&mut self, _: &mut Item) {}

    fn visit_macro_mut(&mut self, _: &mut syn::Macro) {}
}

/// `break 'label`, spanned like the `return` it replaces.
fn break_to(label: &syn::Lifetime, span: Span) -> TokenStream {
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
fn try_to_match(operand: TokenStream, label: &syn::Lifetime, span: Span) -> Group {
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

/// What a body's tokens show, without parsing them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scan {
    /// Nothing to rewrite or look at: no `return`, `?`, attribute, macro
    /// call, closure, item or `async`.
    Plain,
    /// As `Plain`, but with `return` or `?` (`question_mark`), all of them
    /// the function's own: they can be rewritten as tokens.
    Exits { question_mark: bool },
    /// Anything else: the body is parsed.
    Complex,
}

fn scan_body(tokens: TokenStream) -> Scan {
    fn walk(tokens: TokenStream, exits: &mut Option<bool>) -> bool {
        let mut previous_ident = false;
        let mut bang_after_ident = false;
        for tree in tokens {
            let simple = match &tree {
                TokenTree::Punct(p) => match p.as_char() {
                    '?' => {
                        *exits = Some(true);
                        true
                    }
                    '#' | '|' => false,
                    _ => true,
                },
                TokenTree::Ident(i) => {
                    if i == "return" {
                        *exits = Some(exits.unwrap_or(false));
                    }
                    !ITEM_OR_ASYNC.iter().any(|word| i == word)
                }
                // A group right after `name!` is a macro call.
                TokenTree::Group(g) => !bang_after_ident && walk(g.stream(), exits),
                TokenTree::Literal(_) => true,
            };
            if !simple {
                return false;
            }
            bang_after_ident =
                previous_ident && matches!(&tree, TokenTree::Punct(p) if p.as_char() == '!');
            previous_ident = matches!(tree, TokenTree::Ident(_));
        }
        true
    }
    /// Words that start an item or an `async` block, whose `return` and `?`
    /// are not the function's.
    const ITEM_OR_ASYNC: &[&str] = &[
        "async",
        "const",
        "enum",
        "extern",
        "fn",
        "impl",
        "macro_rules",
        "mod",
        "static",
        "struct",
        "trait",
        "type",
        "union",
        "use",
    ];
    let mut exits = None;
    if !walk(tokens, &mut exits) {
        return Scan::Complex;
    }
    match exits {
        None => Scan::Plain,
        Some(question_mark) => Scan::Exits { question_mark },
    }
}

/// A body's `return`s and `?`s rewritten as tokens (`scan_body` said
/// `Scan::Exits`): `None` when a `?`'s operand is not plainly a chain of
/// paths, calls, fields, methods and indexing, which the parsed rewrite
/// then handles.
fn tokens_to_breaks(tokens: TokenStream, label: &syn::Lifetime) -> Option<TokenStream> {
    let mut out: Vec<TokenTree> = Vec::new();
    for tree in tokens {
        match tree {
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), tokens_to_breaks(g.stream(), label)?);
                group.set_span(g.span());
                out.push(group.into());
            }
            TokenTree::Ident(i) if i == "return" => out.extend(break_to(label, i.span())),
            TokenTree::Punct(p) if p.as_char() == '?' => {
                let start = operand_start(&out)?;
                let operand = out.drain(start..).collect();
                out.push(try_to_match(operand, label, p.span()).into());
            }
            other => out.push(other),
        }
    }
    Some(out.into_iter().collect())
}

/// Where the operand of a `?` after `seq` starts: the postfix chain that
/// ends `seq` (`a::b::<T>(x).c[0].d()`), read backwards.
fn operand_start(seq: &[TokenTree]) -> Option<usize> {
    const KEYWORDS: &[&str] = &[
        "as", "break", "const", "continue", "else", "enum", "extern", "false", "fn", "for", "if",
        "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
        "static", "struct", "trait", "true", "type", "unsafe", "use", "where", "while", "async",
        "await", "dyn", "box", "yield", "try", "gen", "do", "become", "macro",
    ];
    let punct =
        |i: usize, c: char| matches!(seq.get(i), Some(TokenTree::Punct(p)) if p.as_char() == c);
    // A name that may be part of an expression (not a keyword, a label or a
    // lifetime).
    let name = |i: usize| {
        matches!(seq.get(i), Some(TokenTree::Ident(w)) if !KEYWORDS.iter().any(|k| w == k))
            && !(i > 0 && punct(i - 1, '\''))
    };
    // Whether `seq[..i]` ends with something a call, index, field or method
    // applies to; `None`: cannot tell (a block or struct literal).
    let chain_before = |i: usize| -> Option<bool> {
        let Some(j) = i.checked_sub(1) else {
            return Some(false);
        };
        match &seq[j] {
            TokenTree::Group(g) => (g.delimiter() != Delimiter::Brace).then_some(true),
            TokenTree::Literal(_) => Some(true),
            TokenTree::Ident(_) => Some(name(j)),
            TokenTree::Punct(p) => Some(p.as_char() == '>'),
        }
    };
    // `.` as a field or method access (not `..`).
    let dot = |i: usize| punct(i, '.') && !(i > 0 && punct(i - 1, '.'));
    let path_sep = |i: usize| i > 0 && punct(i, ':') && punct(i - 1, ':');
    let mut i = seq.len();
    loop {
        let last = i.checked_sub(1)?;
        match &seq[last] {
            TokenTree::Group(g) if g.delimiter() != Delimiter::Brace => {
                i = last;
                if !chain_before(i)? {
                    break;
                }
            }
            TokenTree::Ident(_) | TokenTree::Literal(_) => {
                if matches!(seq[last], TokenTree::Ident(_)) && !name(last) {
                    return None;
                }
                i = last;
                if i > 0 && dot(i - 1) {
                    i -= 1;
                    if !chain_before(i)? {
                        return None;
                    }
                } else if i > 1 && path_sep(i - 1) {
                    i -= 2;
                    if !(name(i.wrapping_sub(1)) || (i > 0 && punct(i - 1, '>'))) {
                        break; // a leading `::`
                    }
                } else {
                    break;
                }
            }
            TokenTree::Punct(p) if p.as_char() == '>' => {
                // Generic arguments, which must follow `::` (a turbofish).
                let mut depth = 0_usize;
                let mut j = last;
                loop {
                    let arrow = j > 0 && punct(j - 1, '-');
                    match &seq[j] {
                        TokenTree::Punct(p) if p.as_char() == '>' && !arrow => depth += 1,
                        TokenTree::Punct(p) if p.as_char() == '<' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j = j.checked_sub(1)?;
                }
                if !(j > 1 && path_sep(j - 1) && name(j.wrapping_sub(3))) {
                    return None;
                }
                i = j - 2;
            }
            _ => return None,
        }
    }
    // `x as T?` is not `x as (T?)`: leave such code to the parser.
    if i > 0 && matches!(&seq[i - 1], TokenTree::Ident(w) if w == "as") {
        return None;
    }
    (i < seq.len()).then_some(i)
}

/// Whether the declared return type is written as a `Result`
/// (`Result<T, E>`, `io::Result<T>`, `anyhow::Result<T>`): a `?` in the body
/// then works on `Result`s (an alias of another name may be an `Option`).
/// Not an associated type of that name (`Self::Result`, `T::Result`, by
/// the case of what precedes it), which may be a `ControlFlow`.
fn spelled_result(output: &ReturnType) -> bool {
    let ReturnType::Type(_, ty) = output else {
        return false;
    };
    let Type::Path(path) = &**ty else {
        return false;
    };
    let mut segments = path.path.segments.iter().rev();
    path.qself.is_none()
        && segments.next().is_some_and(|last| last.ident == "Result")
        && segments.next().is_none_or(|module| {
            let module = module.ident.to_string();
            module.starts_with(|c: char| c.is_lowercase() || c == '_')
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(body: &str) -> Scan {
        scan_body(body.parse().unwrap())
    }

    /// The body with its exits as `break`s, printed; `None` if left to the
    /// parser.
    fn breaks(body: &str) -> Option<String> {
        tokens_to_breaks(body.parse().unwrap(), &body_label()).map(|t| t.to_string())
    }

    /// The `?` operands of a rewritten body, in order.
    fn operands(body: &str) -> Vec<String> {
        let text = breaks(body).expect("rewritten as tokens");
        text.match_indices("match (")
            .map(|(at, _)| {
                let rest = &text[at + "match (".len()..];
                let end = rest.find(") {").unwrap();
                rest[..end].replace(' ', "")
            })
            .collect()
    }

    #[test]
    fn bodies_are_scanned_as_tokens() {
        assert_eq!(scan("a + b.len() as u64"), Scan::Plain);
        assert_eq!(
            scan("let x = y?; Ok(x)"),
            Scan::Exits {
                question_mark: true
            }
        );
        assert_eq!(
            scan("if a { return Ok(1); } Ok(2)"),
            Scan::Exits {
                question_mark: false
            }
        );
        for complex in [
            "v.iter().map(|x| x?)",
            "format!(\"{}\", x?)",
            "async move { x? }",
            "fn inner() -> Result<(), E> { x?; Ok(()) } inner()",
            "#[allow(unused)] let a = 1; a",
            "const { 1 }",
        ] {
            assert_eq!(scan(complex), Scan::Complex, "{complex}");
        }
    }

    #[test]
    fn operands_are_whole_postfix_chains() {
        assert_eq!(operands("let v: u64 = b.parse()?; Ok(v)"), ["b.parse()"]);
        let chained = breaks("s.get(i)?.trim().parse::<Vec<u8>>()?.len()")
            .unwrap()
            .replace(' ', "");
        assert!(chained.starts_with("(match((match(s.get(i)){"), "{chained}");
        assert!(
            chained.contains("}).trim().parse::<Vec<u8>>()){"),
            "{chained}"
        );
        assert!(chained.ends_with(").len()"), "{chained}");
        assert_eq!(operands("x = ::std::fs::read(p)?;"), ["::std::fs::read(p)"]);
        assert_eq!(operands("-a.0[1]?"), ["a.0[1]"]);
        assert_eq!(operands("&Vec::<u8>::new()?"), ["Vec::<u8>::new()"]);
        assert_eq!(operands("f::<fn() -> u8>(g)?"), ["f::<fn()->u8>(g)"]);
        assert_eq!(operands("1 < a? && b > c?"), ["a", "c"]);
        assert_eq!(operands("foo(a?, (b)?)"), ["a", "(b)"]);
        assert_eq!(operands("return x?"), ["x"]);
    }

    #[test]
    fn unclear_operands_are_left_to_the_parser() {
        for body in [
            "match x { _ => y }?",
            "S { a }.b?",
            "x as u64?",
            "<T as Tr>::f()?",
            "a > (b)?",
            "?",
        ] {
            assert_eq!(breaks(body), None, "{body}");
        }
    }

    #[test]
    fn macros_inside_standard_macros_may_hide_exits() {
        let exits = |body: &str| body_exits(&syn::parse_str(&format!("{{ {body} }}")).unwrap());
        assert_eq!(exits("println!(\"{}\", a != b); Ok(())"), Exits::None);
        assert_eq!(
            exits("assert_eq!(a, format!(\"{}\", b)); Ok(())"),
            Exits::None
        );
        assert_eq!(exits("let v = vec![parse!(a)]; Ok(v)"), Exits::Hidden);
        assert_eq!(exits("assert!(ensure!(a)); Ok(x?)"), Exits::Hidden);
        assert_eq!(
            exits("assert!(!(a)); Ok(x?)"),
            Exits::Visible {
                question_mark: true
            }
        );
    }

    #[test]
    fn returns_become_breaks() {
        let text = breaks("if a { return Err(e); } return;").unwrap();
        assert_eq!(text.matches("break '__ddspan_body").count(), 2, "{text}");
        assert!(!text.contains("return"), "{text}");
    }

    fn head(sig: &str) -> FnHead {
        let trees: Vec<TokenTree> = sig.parse::<TokenStream>().unwrap().into_iter().collect();
        FnHead::from_tokens(&trees).unwrap()
    }

    #[test]
    fn signatures_are_read_from_tokens() {
        let h = head("fn load<F: Fn() -> u8, 'a>(f: F) -> io::Result<u8> where F: Send");
        assert_eq!(h.name, "load");
        assert!(!h.is_async && h.constness.is_none() && !h.no_inputs);
        assert!(spelled_result(&h.output) && may_be_result(&h.output));
        let h = head("const unsafe extern \"C\" fn main()");
        assert!(h.constness.is_some() && h.is_main() && h.checks_after());
        assert!(matches!(h.output, ReturnType::Default));
        let h = head("async fn get(&self) -> Outcome<u8>");
        assert!(h.is_async && !spelled_result(&h.output) && may_be_result(&h.output));
        for associated in ["Self::Result", "T::Result", "<T as V>::Result"] {
            let h = head(&format!("fn visit(&self) -> {associated}"));
            assert!(!spelled_result(&h.output), "{associated}");
        }
        for result in [
            "Result<u8, E>",
            "crate::Result<u8>",
            "::std::io::Result<u8>",
        ] {
            assert!(
                spelled_result(&head(&format!("fn f() -> {result}")).output),
                "{result}"
            );
        }
        assert!(!head("fn f() -> u8").checks_after());
        let trees: Vec<TokenTree> = "struct S"
            .parse::<TokenStream>()
            .unwrap()
            .into_iter()
            .collect();
        assert!(FnHead::from_tokens(&trees).is_none());
    }
}

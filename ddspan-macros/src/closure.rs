//! `#[dd_span(...)]` on closures inside an item that a ddspan attribute
//! processes. Stable Rust rejects attributes on expressions unless an
//! enclosing attribute macro removes them: this is that macro.
//!
//! Input: `items.map(#[dd_span(step = "parse")] |line| parse(line))`
//!
//! Output: `items.map(|line| { static SPEC ...; let guard = ...; call_once(|| parse(line)) })`
//!
//! A closure's name is its `span.name`, else the value of its first tag
//! (Orchestrion's rule), else `<enclosing function>.closure`. An `Err` is
//! recorded when the closure's return type is written (`-> Result<_, _>`):
//! Rust infers unannotated closures from their use, too late for the macro.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::visit_mut::{self, VisitMut};
use syn::{Attribute, Block, Expr, ExprClosure, Item, Local, Meta, ReturnType};

use crate::errors::Errors;
use crate::expand::{instrument_future, local, record_error, spec_item};
use crate::settings::Settings;

/// What an attribute on an item or expression asks of ddspan.
pub(crate) enum Own {
    None,
    Ignore,
    Span(Box<Settings>),
}

/// Whether an attribute is `name` (also as a path such as `ddspan::name`).
pub(crate) fn last_segment_is(attr: &Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

/// Removes a `#[dd_span(...)]` or `#[dd_ignore]` (from an expression, where
/// no attribute may stay on stable Rust) and says which it was.
fn remove_own_attribute(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> Own {
    let Some(position) = attrs
        .iter()
        .position(|a| last_segment_is(a, "dd_span") || last_segment_is(a, "dd_ignore"))
    else {
        return Own::None;
    };
    let attr = attrs.remove(position);
    let args = match &attr.meta {
        Meta::Path(_) => TokenStream::new(),
        Meta::List(list) => list.tokens.clone(),
        Meta::NameValue(nv) => {
            errors.push(syn::Error::new_spanned(
                nv,
                "expected `#[dd_span(key = \"value\", ...)]`",
            ));
            TokenStream::new()
        }
    };
    if last_segment_is(&attr, "dd_ignore") {
        if !args.is_empty() {
            errors.push(syn::Error::new_spanned(
                &args,
                "#[dd_ignore] takes no arguments",
            ));
        }
        return Own::Ignore;
    }
    Own::Span(Box::new(Settings::parse(args, errors)))
}

/// The item with every `#[dd_span]` / `#[dd_ignore]` removed from statements
/// and expressions (the fallback output when the attribute has errors).
pub(crate) fn strip_expression_attributes(item: TokenStream) -> TokenStream {
    struct Strip;
    impl VisitMut for Strip {
        fn visit_local_mut(&mut self, local: &mut Local) {
            local.attrs.retain(|a| !is_ours(a));
            visit_mut::visit_local_mut(self, local);
        }

        fn visit_expr_closure_mut(&mut self, closure: &mut ExprClosure) {
            closure.attrs.retain(|a| !is_ours(a));
            visit_mut::visit_expr_closure_mut(self, closure);
        }
    }
    match syn::parse2::<Item>(item.clone()) {
        Ok(mut parsed) => {
            Strip.visit_item_mut(&mut parsed);
            parsed.into_token_stream()
        }
        Err(_) => item,
    }
}

fn is_ours(attr: &Attribute) -> bool {
    last_segment_is(attr, "dd_span") || last_segment_is(attr, "dd_ignore")
}

pub(crate) fn rewrite_closures(block: &mut Block, fn_name: &str, errors: &mut Errors) {
    ClosureRewriter { fn_name, errors }.visit_block_mut(block);
}

struct ClosureRewriter<'a> {
    fn_name: &'a str,
    errors: &'a mut Errors,
}

impl VisitMut for ClosureRewriter<'_> {
    /// Nested items are expanded by their own attributes, not by this one.
    fn visit_item_mut(&mut self, _: &mut Item) {}

    fn visit_local_mut(&mut self, local: &mut Local) {
        let binds_closure = matches!(
            local.init.as_ref().map(|init| &*init.expr),
            Some(Expr::Closure(_))
        );
        let position = local
            .attrs
            .iter()
            .position(|a| last_segment_is(a, "dd_span") || last_segment_is(a, "dd_ignore"));
        if let Some(position) = position {
            if binds_closure {
                // `#[dd_span] let f = |x| ...;` means the closure.
                let attr = local.attrs.remove(position);
                if let Some(Expr::Closure(closure)) = local.init.as_mut().map(|i| &mut *i.expr) {
                    closure.attrs.push(attr);
                }
            } else if last_segment_is(&local.attrs[position], "dd_span") {
                let attr = local.attrs.remove(position);
                self.errors.push(syn::Error::new_spanned(
                    attr,
                    "#[dd_span] on a `let` applies to the closure it binds; this `let` binds none",
                ));
            } else {
                local.attrs.remove(position);
                return;
            }
        }
        visit_mut::visit_local_mut(self, local);
    }

    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        if let Expr::Closure(closure) = expr {
            match remove_own_attribute(&mut closure.attrs, self.errors) {
                Own::Ignore => return,
                Own::Span(settings) => {
                    visit_mut::visit_expr_closure_mut(self, closure);
                    rewrite_closure(closure, &settings, Some(self.fn_name));
                    return;
                }
                Own::None => {}
            }
        }
        // Attributes on other expressions are not ours to judge, except ours.
        visit_mut::visit_expr_mut(self, expr);
    }
}

/// `dd_closure!(args; closure)`.
pub(crate) fn dd_closure(input: TokenStream) -> TokenStream {
    let mut args = TokenStream::new();
    let mut rest = input.clone().into_iter();
    let mut found = false;
    for tree in rest.by_ref() {
        if matches!(&tree, proc_macro2::TokenTree::Punct(p) if p.as_char() == ';') {
            found = true;
            break;
        }
        args.extend([tree]);
    }
    let (args, closure_tokens): (TokenStream, TokenStream) = if found {
        (args, rest.collect())
    } else {
        (TokenStream::new(), input)
    };
    let mut errors = Errors::default();
    let settings = Settings::parse(args, &mut errors);
    let mut closure = match syn::parse2::<ExprClosure>(closure_tokens.clone()) {
        Ok(closure) => closure,
        Err(error) => {
            errors.push(syn::Error::new(
                error.span(),
                "dd_closure! expects `key = \"value\", ...; |args| body` (the arguments may be left out)",
            ));
            let errors = errors.into_compile_errors();
            return quote!({ #errors #closure_tokens });
        }
    };
    if !errors.is_empty() {
        let errors = errors.into_compile_errors();
        return quote!({ #errors #closure });
    }
    let mut errors = Errors::default();
    ClosureRewriter {
        fn_name: "closure",
        errors: &mut errors,
    }
    .visit_expr_closure_mut(&mut closure);
    rewrite_closure(&mut closure, &settings, None);
    let errors = errors.into_compile_errors();
    quote!({ #errors #closure })
}

fn rewrite_closure(closure: &mut ExprClosure, settings: &Settings, fn_name: Option<&str>) {
    let name = settings
        .name
        .as_ref()
        .map(syn::LitStr::value)
        .or_else(|| settings.first_tag_value())
        .unwrap_or_else(|| {
            fn_name.map_or_else(|| "closure".to_owned(), |f| format!("{f}.closure"))
        });
    let spec = spec_item(&name, settings, None);
    let local_start = settings.local_start();
    let ret = local("__ddspan_ret");
    let body = &closure.body;
    let new_body = if closure.asyncness.is_some() {
        let instrumented = instrument_future(
            &quote!(async move { #body }),
            &ret,
            None,
            true,
            &settings.future_start(),
        );
        quote!({ #spec #instrumented.await })
    } else if let Expr::Async(_) = &**body {
        let instrumented =
            instrument_future(&quote!(#body), &ret, None, true, &settings.future_start());
        quote!({ #spec #instrumented })
    } else {
        let guard = local("__ddspan_guard");
        let (record, annotation) = match &closure.output {
            ReturnType::Type(_, ty) => (record_error(&ret, Some(&guard)), quote!(: #ty)),
            ReturnType::Default => (TokenStream::new(), TokenStream::new()),
        };
        quote!({
            #spec
            let #guard = #local_start;
            let #ret #annotation = ::ddspan::__private::call_once(|| #body);
            #record
            #ret
        })
    };
    *closure.body = Expr::Verbatim(new_body);
}

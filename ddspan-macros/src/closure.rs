//! `#[dd_span(...)]` on closures inside an item that a ddspan attribute
//! processes, and `dd_closure!(args; closure)` anywhere. Stable Rust
//! rejects attributes on expressions unless an enclosing attribute macro
//! removes them: this is that macro. The new closure bodies are written
//! by `emit::closure`.
//!
//! A closure's name is its `span.name`, else the value of its first tag
//! (Orchestrion's rule), else `<enclosing function>.closure`. An `Err` is
//! recorded when the closure's return type is written (`-> Result<_, _>`).

use proc_macro2::{TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::visit_mut::{self, VisitMut};
use syn::{Attribute, Expr, ExprClosure, Item, Local, Meta, Stmt};

use crate::emit;
use crate::errors::Errors;
use crate::model::Settings;

/// Whether an attribute is `name` (also as a path such as `ddspan::name`).
pub(crate) fn last_segment_is(attr: &Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

fn is_ours(attr: &Attribute) -> bool {
    last_segment_is(attr, "dd_span") || last_segment_is(attr, "dd_ignore")
}

/// What an attribute on an expression asks of ddspan.
enum Own {
    None,
    Ignore,
    Span(Box<Settings>),
}

/// Removes a `#[dd_span(...)]` or `#[dd_ignore]` (from an expression, where
/// no attribute may stay on stable Rust) and says which it was.
fn remove_own_attribute(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> Own {
    let Some(position) = attrs.iter().position(is_ours) else {
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
/// and expressions (the output, with the errors, when there are errors).
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

/// Instruments the annotated closures in a function's statements; they
/// use the function's `crate = path` unless they set their own.
pub(crate) fn rewrite_closures(
    stmts: &mut [Stmt],
    fn_name: &str,
    krate: Option<&syn::Path>,
    errors: &mut Errors,
) {
    let mut rewriter = ClosureRewriter {
        fn_name,
        krate,
        errors,
    };
    for stmt in stmts {
        rewriter.visit_stmt_mut(stmt);
    }
}

struct ClosureRewriter<'a> {
    fn_name: &'a str,
    krate: Option<&'a syn::Path>,
    errors: &'a mut Errors,
}

impl ClosureRewriter<'_> {
    fn instrument(&mut self, closure: &mut ExprClosure, mut settings: Settings) {
        if settings.krate.is_none() {
            settings.krate = self.krate.cloned();
        }
        check_closure_tags(closure, &settings, self.errors);
        let body = emit::closure(closure, &settings, Some(self.fn_name));
        *closure.body = Expr::Verbatim(body);
    }
}

impl VisitMut for ClosureRewriter<'_> {
    /// Nested items are expanded by their own attributes, not by this one.
    fn visit_item_mut(&mut self, _: &mut Item) {}

    fn visit_local_mut(&mut self, local: &mut Local) {
        let binds_closure = matches!(
            local.init.as_ref().map(|init| &*init.expr),
            Some(Expr::Closure(_))
        );
        if let Some(position) = local.attrs.iter().position(is_ours) {
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
                    self.instrument(closure, *settings);
                    return;
                }
                Own::None => {}
            }
        }
        // Attributes on other expressions are not ours to judge, except ours.
        visit_mut::visit_expr_mut(self, expr);
    }
}

/// Tags computed from a closure's arguments use only those.
fn check_closure_tags(closure: &ExprClosure, settings: &Settings, errors: &mut Errors) {
    if settings.first_dynamic_tag().is_some() {
        let arguments = crate::model::argument_names(&closure.inputs);
        crate::model::check_tag_arguments(settings, &arguments, "the closure", errors);
    }
}

/// `dd_closure!(args; closure)`, the arguments optional.
pub(crate) fn dd_closure(input: TokenStream) -> TokenStream {
    let trees: Vec<TokenTree> = input.clone().into_iter().collect();
    let semicolon = trees
        .iter()
        .position(|tree| matches!(tree, TokenTree::Punct(p) if p.as_char() == ';'));
    let (args, closure_tokens): (TokenStream, TokenStream) = match semicolon {
        Some(at) => (
            trees[..at].iter().cloned().collect(),
            trees[at + 1..].iter().cloned().collect(),
        ),
        None => (TokenStream::new(), input),
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
    let mut rewriter = ClosureRewriter {
        fn_name: "closure",
        krate: settings.krate.as_ref(),
        errors: &mut errors,
    };
    rewriter.visit_expr_closure_mut(&mut closure);
    check_closure_tags(&closure, &settings, &mut errors);
    if !errors.is_empty() {
        let errors = errors.into_compile_errors();
        return quote!({ #errors #closure });
    }
    let body = emit::closure(&closure, &settings, None);
    *closure.body = Expr::Verbatim(body);
    let errors = errors.into_compile_errors();
    quote!({ #errors #closure })
}

//! `#[dd_span]`: what it is on, and one function through the pipeline:
//! parse (the arguments in `args.rs`, the item here) → model (`model.rs`,
//! `shape.rs`, `body.rs`) → plan (`plan.rs`) → emit (`emit.rs`, where the
//! rewrite is shown). On any error the original item is emitted with the
//! errors, so callers see no follow-on errors.

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::{Block, Expr, Item, Signature, Stmt, TraitItemFn};

use crate::body::Body;
use crate::errors::Errors;
use crate::model::Settings;
use crate::shape::FnShape;
use crate::{closure, container, emit, plan};

pub(crate) fn dd_span(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let settings = Settings::parse(args, &mut errors);
    let expanded = match FnItem::read(&item) {
        Some(function) => function.instrument(&settings, &mut errors),
        None => other_item(&item, &settings, &mut errors),
    };
    if errors.is_empty() {
        expanded
    } else {
        // The original item, so callers see no follow-on errors; without our
        // attributes on statements and closures, which stable Rust rejects.
        let errors = errors.into_compile_errors();
        let item = closure::strip_expression_attributes(item);
        quote!(#errors #item)
    }
}

/// A function item read without parsing its head or its body: `head`
/// (attributes, visibility, signature) is passed on as it came, and read by
/// [`FnShape::from_head`]; the body is read by [`Body::read`], which parses
/// it only when it must (`syn` in a debug build is a good part of the
/// attribute's compile time).
struct FnItem {
    head: TokenStream,
    shape: FnShape,
    body: Group,
}

impl FnItem {
    fn read(item: &TokenStream) -> Option<FnItem> {
        let mut trees: Vec<TokenTree> = item.clone().into_iter().collect();
        let Some(TokenTree::Group(body)) = trees.pop() else {
            return None;
        };
        if body.delimiter() != Delimiter::Brace {
            return None;
        }
        let shape = FnShape::from_head(&trees)?;
        Some(FnItem {
            head: trees.into_iter().collect(),
            shape,
            body,
        })
    }

    fn instrument(self, settings: &Settings, errors: &mut Errors) -> TokenStream {
        let FnItem {
            head,
            mut shape,
            body,
        } = self;
        if refused(&shape, errors) {
            return quote!(#head #body);
        }
        if shape.is_async
            && !shape.is_main
            && settings.child_of.is_none()
            && only_inert_attributes(&head)
        {
            // Its signature changes (`fn .. -> impl Future`): parsed whole.
            if let Ok(mut function) = syn::parse2::<syn::ItemFn>(quote!(#head #body)) {
                instrument_block(
                    &mut function.sig,
                    &mut function.block,
                    settings,
                    errors,
                    true,
                );
                return function.into_token_stream();
            }
        }
        // A body that does not parse reaches rustc untouched: its error,
        // not the macro's.
        let Some(read) = Body::read(&body) else {
            return quote!(#head #body);
        };
        let mut new_body = Group::new(
            Delimiter::Brace,
            instrument_body(&mut shape, read, settings, errors),
        );
        new_body.set_span(body.span());
        quote!(#head #new_body)
    }
}

/// Attributes that are not macros which might want an `async fn` as it
/// was written (`#[tokio::test]`, `#[async_trait]`): an `async fn` under
/// only these becomes a `fn` returning a future, which captures its parent
/// when called.
const INERT: &[&str] = &[
    "doc",
    "allow",
    "warn",
    "deny",
    "forbid",
    "expect",
    "inline",
    "cold",
    "must_use",
    "cfg",
    "cfg_attr",
    "track_caller",
    "deprecated",
    "dd_span",
    "dd_ignore",
    "rustfmt",
    "clippy",
];

/// Whether every outer attribute in an item's head tokens is inert.
fn only_inert_attributes(head: &TokenStream) -> bool {
    let trees: Vec<TokenTree> = head.clone().into_iter().collect();
    let mut i = 0;
    while let (Some(TokenTree::Punct(p)), Some(TokenTree::Group(g))) =
        (trees.get(i), trees.get(i + 1))
    {
        if p.as_char() != '#' || g.delimiter() != Delimiter::Bracket {
            break;
        }
        let first = g.stream().into_iter().next();
        if !matches!(&first, Some(TokenTree::Ident(name)) if INERT.iter().any(|inert| name == inert))
        {
            return false;
        }
        i += 2;
    }
    true
}

/// Whether parsed attributes are all inert (see [`INERT`]).
pub(crate) fn inert(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().all(|attr| {
        attr.path()
            .segments
            .first()
            .is_some_and(|first| INERT.iter().any(|inert| first.ident == inert))
    })
}

/// Instruments a parsed function (a member of an `impl` block or module);
/// `parent_at_call`: an `async fn` may become a `fn` returning a future
/// (no attribute macro expects it as written).
pub(crate) fn instrument_block(
    sig: &mut Signature,
    block: &mut Block,
    settings: &Settings,
    errors: &mut Errors,
    parent_at_call: bool,
) {
    let mut shape = FnShape::of(sig);
    if refused(&shape, errors) {
        return;
    }
    shape.parent_at_call =
        parent_at_call && shape.is_async && !shape.is_main && settings.child_of.is_none();
    if shape.parent_at_call {
        // `async fn f(..) -> T` as `fn f(..) -> impl Future<Output = T>`.
        // The `impl` is the macro's, at its edition (2024): the future
        // captures every lifetime in scope, as an `async fn`'s does.
        let output = match &sig.output {
            syn::ReturnType::Default => quote!(()),
            syn::ReturnType::Type(_, ty) => ty.to_token_stream(),
        };
        shape.take_moved(sig);
        let span = proc_macro2::Span::mixed_site();
        let future = quote::quote_spanned!(span=> impl ::core::future::Future<Output = #output>);
        sig.asyncness = None;
        sig.output =
            syn::ReturnType::Type(syn::Token![->](span), Box::new(syn::Type::Verbatim(future)));
    }
    let body = Body::parsed(
        std::mem::take(&mut block.stmts),
        block.brace_token.span.join(),
    );
    let new = instrument_body(&mut shape, body, settings, errors);
    // The user's braces stay (the item's span then lies wholly in user
    // code, so lints such as `dead_code` still report on it); the new body
    // is emitted as tokens, not parsed again.
    block.stmts = vec![Stmt::Expr(Expr::Verbatim(new), None)];
}

/// A function that cannot be instrumented: a `const fn`.
fn refused(shape: &FnShape, errors: &mut Errors) -> bool {
    let Some(constness) = shape.constness else {
        return false;
    };
    errors.push(syn::Error::new(
        constness,
        "#[dd_span] cannot instrument a `const fn`: a span needs a clock at run time",
    ));
    true
}

/// The statements of an instrumented body.
fn instrument_body(
    shape: &mut FnShape,
    mut body: Body,
    settings: &Settings,
    errors: &mut Errors,
) -> TokenStream {
    if settings.first_dynamic_tag().is_some() {
        let arguments = shape.argument_names();
        crate::model::check_tag_arguments(settings, &arguments, &shape.name, errors);
    }
    if let Some(stmts) = body.stmts_mut() {
        closure::rewrite_closures(stmts, &shape.name, settings.krate.as_ref(), errors);
    }
    emit::function(plan::decide(shape, body), shape, settings)
}

/// Any other item `#[dd_span]` may be on, parsed whole.
fn other_item(item: &TokenStream, settings: &Settings, errors: &mut Errors) -> TokenStream {
    match syn::parse2::<Item>(item.clone()) {
        // A function whose body `FnItem` could not take apart (it came in
        // an invisible group from a `macro_rules!` fragment).
        Ok(Item::Fn(mut function)) => {
            let inert = inert(&function.attrs);
            instrument_block(
                &mut function.sig,
                &mut function.block,
                settings,
                errors,
                inert,
            );
            function.into_token_stream()
        }
        Ok(Item::Impl(_) | Item::Mod(_)) if settings.first_dynamic_tag().is_some() => {
            errors.push(syn::Error::new_spanned(
                settings.first_dynamic_tag(),
                "a tag computed from arguments belongs to one function; put it on that function",
            ));
            item.clone()
        }
        Ok(Item::Impl(_) | Item::Mod(_)) if settings.child_of.is_some() => {
            errors.push(syn::Error::new_spanned(
                settings.child_of.as_ref(),
                "`child_of` names one function's parent; put it on that function",
            ));
            item.clone()
        }
        Ok(Item::Impl(block)) => container::rewrite_impl(block, settings, errors),
        Ok(Item::Mod(module)) if module.content.is_some() => {
            container::rewrite_mod(module, settings, errors)
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

//! `#[dd_span]` on an `impl` block or an inline module: every function with
//! a body inside is instrumented with the block's settings; an item's own
//! `#[dd_span(...)]` extends or overrides them, `#[dd_ignore]` leaves the
//! item untouched (no span, nothing inside rewritten), as Orchestrion's
//! `//orchestrion:ignore` does.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Attribute, ImplItem, Item, ItemImpl, ItemMod, TraitItem};

use crate::args;
use crate::closure::last_segment_is;
use crate::errors::Errors;
use crate::expand::{inert, instrument_block};
use crate::model::Settings;

/// The settings to instrument an item inside a block with: `None` when it
/// opts out or carries its own `#[dd_span]`. An own attribute is handed
/// the block's arguments and left to expand itself (so the user's
/// `use ddspan::dd_span` stays used, and its errors are its own).
fn item_settings(attrs: &mut [Attribute], outer: &Settings) -> Option<Settings> {
    if attrs.iter().any(|a| last_segment_is(a, "dd_ignore")) {
        return None;
    }
    let Some(attr) = attrs.iter_mut().find(|a| last_segment_is(a, "dd_span")) else {
        return Some(outer.clone());
    };
    let own = match &attr.meta {
        syn::Meta::List(list) => list.tokens.clone(),
        _ => TokenStream::new(),
    };
    let args = member_args(outer, own);
    let path = attr.path().clone();
    *attr = syn::parse_quote!(#[#path(#args)]);
    None
}

/// A member's own arguments under the block's: the block's inherited
/// arguments (`model::Settings::inherited`) whose key the member does not
/// set, as the block's attribute wrote them, then the member's own.
fn member_args(outer: &Settings, own: TokenStream) -> TokenStream {
    // The member's own errors are reported when its attribute expands.
    let own_keys: Vec<String> = args::parse(own.clone())
        .into_iter()
        .flatten()
        .map(|arg| arg.key.name)
        .collect();
    let inherited = outer
        .inherited
        .iter()
        .filter(|arg| !own_keys.contains(&arg.key.name));
    quote!(#(#inherited,)* #own)
}

/// A function inside a block: instrumented with the block's settings unless
/// it opts out or carries its own attribute. An inherited `const fn` is
/// left alone: it cannot be timed, and only an explicit attribute on it is
/// an error.
fn instrument_member(
    attrs: &mut [Attribute],
    sig: &mut syn::Signature,
    block: &mut syn::Block,
    settings: &Settings,
    errors: &mut Errors,
    inert_container: bool,
) {
    let Some(own) = item_settings(attrs, settings) else {
        return;
    };
    if sig.constness.is_none() {
        let parent_at_call = inert_container && inert(attrs);
        instrument_block(sig, block, &own, errors, parent_at_call);
    }
}

pub(crate) fn rewrite_impl(
    mut block: ItemImpl,
    settings: &Settings,
    errors: &mut Errors,
) -> TokenStream {
    instrument_impl(&mut block, settings, errors);
    block.into_token_stream()
}

fn instrument_impl(block: &mut ItemImpl, settings: &Settings, errors: &mut Errors) {
    // `#[async_trait]` and the like rewrite the `async fn`s themselves.
    let inert_block = inert(&block.attrs);
    for item in &mut block.items {
        if let ImplItem::Fn(function) = item {
            instrument_member(
                &mut function.attrs,
                &mut function.sig,
                &mut function.block,
                settings,
                errors,
                inert_block,
            );
        }
    }
}

pub(crate) fn rewrite_mod(
    mut module: ItemMod,
    settings: &Settings,
    errors: &mut Errors,
) -> TokenStream {
    instrument_mod(&mut module, settings, errors);
    module.into_token_stream()
}

fn instrument_mod(module: &mut ItemMod, settings: &Settings, errors: &mut Errors) {
    let Some((_, items)) = &mut module.content else {
        return;
    };
    for item in items {
        match item {
            Item::Fn(function) => {
                instrument_member(
                    &mut function.attrs,
                    &mut function.sig,
                    &mut function.block,
                    settings,
                    errors,
                    true,
                );
            }
            Item::Impl(block) => {
                if let Some(own) = item_settings(&mut block.attrs, settings) {
                    instrument_impl(block, &own, errors);
                }
            }
            Item::Mod(inner) if inner.content.is_some() => {
                if let Some(own) = item_settings(&mut inner.attrs, settings) {
                    instrument_mod(inner, &own, errors);
                }
            }
            Item::Trait(definition) => {
                let inert_trait = inert(&definition.attrs);
                let Some(own) = item_settings(&mut definition.attrs, settings) else {
                    continue;
                };
                for item in &mut definition.items {
                    if let TraitItem::Fn(method) = item {
                        let Some(method_settings) = item_settings(&mut method.attrs, &own) else {
                            continue;
                        };
                        if let Some(body) = &mut method.default {
                            let parent_at_call = inert_trait && inert(&method.attrs);
                            instrument_block(
                                &mut method.sig,
                                body,
                                &method_settings,
                                errors,
                                parent_at_call,
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

//! `#[dd_span]` on an `impl` block or an inline module: every function with
//! a body inside is instrumented with the block's settings; an item's own
//! `#[dd_span(...)]` extends or overrides them, `#[dd_ignore]` leaves the
//! item untouched (no span, nothing inside rewritten), as Orchestrion's
//! `//orchestrion:ignore` does.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{ImplItem, Item, ItemImpl, ItemMod, TraitItem};

use crate::closure::last_segment_is;
use crate::errors::Errors;
use crate::expand::instrument_fn;
use crate::settings::Settings;

/// What to do with an item inside a block: `None` when it opts out or
/// carries its own `#[dd_span]`. An own attribute is rewritten to carry
/// the block's settings merged with its own, and left to expand itself
/// (so the user's `use ddspan::dd_span` stays used).
fn item_settings(
    attrs: &mut [syn::Attribute],
    outer: &Settings,
    errors: &mut Errors,
) -> Option<Settings> {
    if attrs.iter().any(|a| last_segment_is(a, "dd_ignore")) {
        return None;
    }
    let Some(attr) = attrs.iter_mut().find(|a| last_segment_is(a, "dd_span")) else {
        return Some(outer.clone());
    };
    let own_args = match &attr.meta {
        syn::Meta::List(list) => list.tokens.clone(),
        _ => TokenStream::new(),
    };
    let merged = Settings::parse(own_args, errors).within(outer);
    let path = attr.path().clone();
    let args = merged.to_args();
    *attr = syn::parse_quote!(#[#path(#args)]);
    None
}

/// A function inside a block: instrumented with the block's settings unless
/// it opts out or carries its own attribute. An inherited `const fn` is
/// left alone: it cannot be timed, and only an explicit attribute on it is
/// an error.
fn instrument_member(
    attrs: &mut [syn::Attribute],
    sig: &syn::Signature,
    block: &mut syn::Block,
    settings: &Settings,
    errors: &mut Errors,
) {
    let Some(own) = item_settings(attrs, settings, errors) else {
        return;
    };
    if sig.constness.is_none() {
        instrument_fn(sig, block, &own, errors);
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
    for item in &mut block.items {
        if let ImplItem::Fn(function) = item {
            instrument_member(
                &mut function.attrs,
                &function.sig,
                &mut function.block,
                settings,
                errors,
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
                    &function.sig,
                    &mut function.block,
                    settings,
                    errors,
                );
            }
            Item::Impl(block) => {
                if let Some(own) = item_settings(&mut block.attrs, settings, errors) {
                    instrument_impl(block, &own, errors);
                }
            }
            Item::Mod(inner) if inner.content.is_some() => {
                if let Some(own) = item_settings(&mut inner.attrs, settings, errors) {
                    instrument_mod(inner, &own, errors);
                }
            }
            Item::Trait(definition) => {
                let Some(own) = item_settings(&mut definition.attrs, settings, errors) else {
                    continue;
                };
                for item in &mut definition.items {
                    if let TraitItem::Fn(method) = item {
                        let Some(method_settings) = item_settings(&mut method.attrs, &own, errors)
                        else {
                            continue;
                        };
                        if let Some(body) = &mut method.default {
                            instrument_fn(&method.sig, body, &method_settings, errors);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

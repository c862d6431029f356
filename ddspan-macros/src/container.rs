//! `#[dd_span]` on an `impl` block or an inline module: every function with
//! a body inside is instrumented with the block's settings; an item's own
//! `#[dd_span(...)]` extends or overrides them, `#[dd_ignore]` leaves the
//! item untouched (no span, nothing inside rewritten), as Orchestrion's
//! `//orchestrion:ignore` does.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{ImplItem, Item, ItemImpl, ItemMod, TraitItem};

use crate::closure::{take_own_attribute, Own};
use crate::errors::Errors;
use crate::expand::instrument_fn;
use crate::settings::Settings;

/// The settings for an item inside a block, or `None` when it opts out.
/// An inherited `const fn` is skipped: only an explicit attribute on it is
/// an error.
fn item_settings(
    attrs: &mut Vec<syn::Attribute>,
    outer: &Settings,
    errors: &mut Errors,
) -> Option<(Settings, bool)> {
    match take_own_attribute(attrs, errors) {
        Own::Ignore => None,
        Own::Span(own) => Some((own.within(outer), true)),
        Own::None => Some((outer.within(&Settings::default()), false)),
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
            let Some((own, explicit)) = item_settings(&mut function.attrs, settings, errors) else {
                continue;
            };
            if function.sig.constness.is_some() && !explicit {
                continue;
            }
            instrument_fn(&function.sig, &mut function.block, &own, errors);
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
                let Some((own, explicit)) = item_settings(&mut function.attrs, settings, errors)
                else {
                    continue;
                };
                if function.sig.constness.is_some() && !explicit {
                    continue;
                }
                instrument_fn(&function.sig, &mut function.block, &own, errors);
            }
            Item::Impl(block) => {
                if let Some((own, _)) = item_settings(&mut block.attrs, settings, errors) {
                    instrument_impl(block, &own, errors);
                }
            }
            Item::Mod(inner) if inner.content.is_some() => {
                if let Some((own, _)) = item_settings(&mut inner.attrs, settings, errors) {
                    instrument_mod(inner, &own, errors);
                }
            }
            Item::Trait(definition) => {
                let Some((own, _)) = item_settings(&mut definition.attrs, settings, errors) else {
                    continue;
                };
                for item in &mut definition.items {
                    if let TraitItem::Fn(method) = item {
                        let Some((method_settings, _)) =
                            item_settings(&mut method.attrs, &own, errors)
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

//! A span's settings, validated from the attribute's arguments: special keys
//! set span fields, every other key is a tag.

use proc_macro2::TokenStream;
use syn::LitStr;

use crate::attr::{self, Arg, Value};
use crate::errors::Errors;

/// Keys that set span fields rather than tags.
const NAME: &str = "span.name";
const RESOURCE: &str = "resource.name";
const SERVICE: &str = "service.name";
const TYPE: &str = "span.type";

#[derive(Clone, Default)]
pub(crate) struct Settings {
    pub(crate) name: Option<LitStr>,
    pub(crate) resource: Option<LitStr>,
    pub(crate) service: Option<LitStr>,
    pub(crate) span_type: Option<LitStr>,
    /// Tags in the order written; keys are unique.
    pub(crate) tags: Vec<(String, Value)>,
    /// `child_of = <expr>`: the parent context, or headers to extract it from.
    pub(crate) child_of: Option<syn::Expr>,
}

impl Settings {
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Settings {
        let args = attr::parse_args(tokens, errors);
        Settings::from_args(args, errors)
    }

    fn from_args(args: Vec<Arg>, errors: &mut Errors) -> Settings {
        let mut settings = Settings::default();
        let mut seen: Vec<String> = Vec::new();
        for arg in args {
            if seen.contains(&arg.key) {
                errors.push(syn::Error::new_spanned(
                    &arg.key_tokens,
                    format!("duplicate key `{}`", arg.key),
                ));
                continue;
            }
            seen.push(arg.key.clone());
            let field = match arg.key.as_str() {
                NAME => Some(&mut settings.name),
                RESOURCE => Some(&mut settings.resource),
                SERVICE => Some(&mut settings.service),
                TYPE => Some(&mut settings.span_type),
                _ => None,
            };
            match (field, arg.value) {
                (Some(field), Value::Str(lit)) => {
                    if lit.value().trim().is_empty() {
                        errors.push(syn::Error::new(
                            lit.span(),
                            format!("`{}` must not be empty", arg.key),
                        ));
                    } else {
                        *field = Some(lit);
                    }
                }
                (Some(_), value) => errors.push(syn::Error::new(
                    value.span(),
                    format!("`{}` takes a string", arg.key),
                )),
                (None, Value::Parent(expr)) => settings.child_of = Some(*expr),
                (None, value) => settings.tags.push((arg.key, value)),
            }
        }
        settings
    }

    /// These settings under an enclosing block's: own values win, tags are
    /// added to (and override) the block's.
    pub(crate) fn within(&self, outer: &Settings) -> Settings {
        let mut tags = outer.tags.clone();
        for (key, value) in &self.tags {
            tags.retain(|(k, _)| k != key);
            tags.push((key.clone(), value.clone()));
        }
        Settings {
            name: self.name.clone(),
            resource: self.resource.clone().or_else(|| outer.resource.clone()),
            service: self.service.clone().or_else(|| outer.service.clone()),
            span_type: self.span_type.clone().or_else(|| outer.span_type.clone()),
            tags,
            child_of: self.child_of.clone(),
        }
    }

    /// These settings as attribute arguments again (`key = value, ...`).
    pub(crate) fn to_args(&self) -> TokenStream {
        let mut args: Vec<TokenStream> = Vec::new();
        if let Some(parent) = &self.child_of {
            args.push(quote::quote!(child_of = #parent));
        }
        for (key, field) in [
            (NAME, &self.name),
            (RESOURCE, &self.resource),
            (SERVICE, &self.service),
            (TYPE, &self.span_type),
        ] {
            if let Some(lit) = field {
                let key = dotted_key(key);
                args.push(quote::quote!(#key = #lit));
            }
        }
        for (key, value) in &self.tags {
            let key = dotted_key(key);
            let value = match value {
                Value::Str(lit) => quote::quote!(#lit),
                Value::Number { tokens, .. } => tokens.clone(),
                Value::Parent(expr) => quote::quote!(#expr),
            };
            args.push(quote::quote!(#key = #value));
        }
        quote::quote!(#(#args),*)
    }

    /// How the span starts: under the active span, or under `child_of`.
    pub(crate) fn local_start(&self) -> TokenStream {
        match &self.child_of {
            None => quote::quote!(::ddspan::__private::LocalSpanGuard::start(&__DDSPAN_SPEC)),
            Some(parent) => quote::quote!(::ddspan::__private::LocalSpanGuard::start_child_of(
                &__DDSPAN_SPEC,
                ::ddspan::__private::parent_from(#parent),
            )),
        }
    }

    /// How a future's span starts: under the active span, or `child_of`.
    pub(crate) fn future_start(&self) -> TokenStream {
        match &self.child_of {
            None => quote::quote!(::ddspan::__private::start_span(&__DDSPAN_SPEC)),
            Some(parent) => quote::quote!(::ddspan::__private::start_span_child_of(
                &__DDSPAN_SPEC,
                ::ddspan::__private::parent_from(#parent),
            )),
        }
    }

    /// The value of the first string tag (a closure's name when it has no
    /// `span.name`, as in Orchestrion).
    pub(crate) fn first_tag_value(&self) -> Option<String> {
        self.tags.first().map(|(_, value)| match value {
            Value::Str(lit) => lit.value(),
            Value::Number { value, .. } => value.to_string(),
            Value::Parent(_) => String::new(),
        })
    }
}

/// `a.b.c` as tokens: idents joined by dots. Keywords stay plain (`type`,
/// `self`, `_`): the parser reads any ident, and some keywords cannot be
/// raw identifiers.
fn dotted_key(key: &str) -> TokenStream {
    let parts = key
        .split('.')
        .map(|part| syn::Ident::new(part, proc_macro2::Span::call_site()));
    quote::quote!(#(#parts).*)
}

#[cfg(test)]
#[path = "settings_props.rs"]
mod props;

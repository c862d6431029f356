//! Parse: `#[dd_span(key = value, other.key = 3, child_of = f::<A, B>(x))]`
//! into a list of [`Arg`]s, syntax only (what each value may be is
//! `model.rs`'s business).
//!
//! Keys are identifiers joined by dots (`span.name`, `http.route`), which
//! `syn::Meta` (and so darling) cannot read: a dotted key is not a path.
//! Values are whole expressions, so a comma inside one (`f::<A, B>(x)`) is
//! not a separator. A bad argument is reported and skipped up to the next
//! comma, so every bad argument of an attribute shows in one build.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, Ident, Token};

use crate::errors::Errors;

/// One `key = value` argument, as written.
#[derive(Clone)]
pub(crate) struct Arg {
    pub(crate) key: Key,
    pub(crate) eq: Token![=],
    pub(crate) value: Expr,
}

/// A dotted key: `span.name`, `r#type`, `crate`.
#[derive(Clone)]
pub(crate) struct Key {
    /// The key without raw prefixes: `span.name`, `type`.
    pub(crate) name: String,
    /// The key's tokens, for errors that point at it.
    pub(crate) tokens: TokenStream,
}

impl ToTokens for Key {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.tokens.to_tokens(tokens);
    }
}

impl ToTokens for Arg {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.key.to_tokens(tokens);
        self.eq.to_tokens(tokens);
        self.value.to_tokens(tokens);
    }
}

/// The arguments that parse; the others are reported to `errors`.
pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Vec<Arg> {
    let mut args = Vec::new();
    let mut bad = Errors::default();
    let parser = |input: ParseStream<'_>| {
        while !input.is_empty() {
            match parse_arg(input) {
                Ok(arg) => args.push(arg),
                Err(error) => {
                    bad.push(error);
                    skip_past_comma(input)?;
                }
            }
        }
        Ok(())
    };
    // An argument that failed inside a group (`f(1 2)`) leaves syn's
    // "unexpected token" for the end of the list; it repeats the error
    // already reported, so it counts only when nothing else was.
    if let Err(unexpected) = parser.parse2(tokens) {
        if bad.is_empty() {
            bad.push(unexpected);
        }
    }
    errors.extend(bad);
    args
}

/// `key = value` and the comma after it, if any.
fn parse_arg(input: ParseStream<'_>) -> syn::Result<Arg> {
    let key = parse_key(input)?;
    if input.is_empty() || input.peek(Token![,]) {
        return Err(syn::Error::new_spanned(
            &key.tokens,
            format!("`{}` needs a value: `{} = \"...\"`", key.name, key.name),
        ));
    }
    let eq: Token![=] = input.parse()?;
    let value: Expr = input.parse()?;
    if !input.is_empty() {
        if !input.peek(Token![,]) {
            return Err(input.error("expected `,` after the value"));
        }
        input.parse::<Token![,]>()?;
    }
    Ok(Arg { key, eq, value })
}

fn parse_key(input: ParseStream<'_>) -> syn::Result<Key> {
    if input.peek(Token![=]) {
        return Err(input.error("expected a tag key before `=`, as in `key = \"value\"`"));
    }
    let first = Ident::parse_any(input)
        .map_err(|e| syn::Error::new(e.span(), "expected a tag key, as in `key = \"value\"`"))?;
    let mut name = first.unraw().to_string();
    let mut tokens = first.into_token_stream();
    while input.peek(Token![.]) {
        let dot: Token![.] = input.parse()?;
        let part = Ident::parse_any(input)?;
        name.push('.');
        name.push_str(&part.unraw().to_string());
        dot.to_tokens(&mut tokens);
        part.to_tokens(&mut tokens);
    }
    Ok(Key { name, tokens })
}

/// Skips what is left of a bad argument, up to and with the next comma.
fn skip_past_comma(input: ParseStream<'_>) -> syn::Result<()> {
    input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tree, next)) = rest.token_tree() {
            rest = next;
            if matches!(&tree, proc_macro2::TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
        }
        Ok(((), rest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_and_errors(text: &str) -> (Vec<String>, usize) {
        let mut errors = Errors::default();
        let args = parse(text.parse().unwrap(), &mut errors);
        let keys = args
            .iter()
            .map(|a| format!("{}={}", a.key.name, a.value.to_token_stream()))
            .collect();
        (keys, errors.count())
    }

    #[test]
    fn commas_inside_a_value_do_not_separate_arguments() {
        let (keys, errors) = keys_and_errors("child_of = f::<A, B>(x), a.b = 1,");
        assert_eq!(errors, 0);
        assert_eq!(keys, ["child_of=f :: < A , B > (x)", "a.b=1"]);
    }

    #[test]
    fn bad_arguments_are_skipped_to_the_next_comma() {
        let (keys, errors) =
            keys_and_errors("tag, = 1, k = f(1 2), x: 1, j = \"a\" \"b\", ok = 2, k.");
        assert_eq!(keys, ["ok=2"]);
        assert_eq!(errors, 6);
    }
}

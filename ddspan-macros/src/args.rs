//! Parse: `#[dd_span(key = value, other.key = 3, child_of = f::<A, B>(x),
//! user = %name, req = ?req)]` into a list of [`Arg`]s, syntax only (what
//! each value may be is `model.rs`'s business). A value may start with `%`
//! (record its `Display`) or `?` (its `Debug`), as in `tracing`'s fields.
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

/// One `key = value` argument, as written.
#[derive(Clone)]
pub(crate) struct Arg {
    pub(crate) key: Key,
    pub(crate) eq: Token![=],
    /// `%` or `?` before the value.
    pub(crate) format: Option<Format>,
    pub(crate) value: Expr,
}

/// How a value written with a sigil is recorded.
#[derive(Clone)]
pub(crate) enum Format {
    /// `%value`: its `Display`.
    Display(Token![%]),
    /// `?value`: its `Debug`.
    Debug(Token![?]),
}

impl ToTokens for Format {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Format::Display(sigil) => sigil.to_tokens(tokens),
            Format::Debug(sigil) => sigil.to_tokens(tokens),
        }
    }
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
        self.format.to_tokens(tokens);
        self.value.to_tokens(tokens);
    }
}

/// Every argument in the order written, or the error that it is; a bad
/// one is skipped to the next comma, so the ones after it are still read.
pub(crate) fn parse(tokens: TokenStream) -> Vec<syn::Result<Arg>> {
    let mut args = Vec::new();
    let parser = |input: ParseStream<'_>| {
        while !input.is_empty() {
            let arg = parse_arg(input);
            if arg.is_err() {
                skip_past_comma(input)?;
            }
            args.push(arg);
        }
        Ok(())
    };
    // An argument that failed inside a group (`f(1 2)`) leaves syn's
    // "unexpected token" for the end of the list; it repeats the error
    // already there, so it counts only when nothing else failed.
    if let Err(unexpected) = parser.parse2(tokens) {
        if args.iter().all(Result::is_ok) {
            args.push(Err(unexpected));
        }
    }
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
    let format = if input.peek(Token![%]) {
        Some(Format::Display(input.parse()?))
    } else if input.peek(Token![?]) {
        Some(Format::Debug(input.parse()?))
    } else {
        None
    };
    let value: Expr = input.parse()?;
    if !input.is_empty() {
        if !input.peek(Token![,]) {
            return Err(input.error("expected `,` after the value"));
        }
        input.parse::<Token![,]>()?;
    }
    Ok(Arg {
        key,
        eq,
        format,
        value,
    })
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
        let args = parse(text.parse().unwrap());
        let keys = args
            .iter()
            .flatten()
            .map(|a| format!("{}={}", a.key.name, a.value.to_token_stream()))
            .collect();
        (keys, args.iter().filter(|a| a.is_err()).count())
    }

    #[test]
    fn commas_inside_a_value_do_not_separate_arguments() {
        let (keys, errors) = keys_and_errors("child_of = f::<A, B>(x), a.b = 1,");
        assert_eq!(errors, 0);
        assert_eq!(keys, ["child_of=f :: < A , B > (x)", "a.b=1"]);
    }

    #[test]
    fn values_may_start_with_a_format_sigil() {
        let args = parse("a = %x.name(), b = ?req, c = -1".parse().unwrap());
        let sigils: Vec<String> = args
            .iter()
            .flatten()
            .map(|a| a.format.to_token_stream().to_string())
            .collect();
        assert_eq!(sigils, ["%", "?", ""]);
    }

    #[test]
    fn bad_arguments_are_skipped_to_the_next_comma() {
        let (keys, errors) =
            keys_and_errors("tag, = 1, k = f(1 2), x: 1, j = \"a\" \"b\", ok = 2, k.");
        assert_eq!(keys, ["ok=2"]);
        assert_eq!(errors, 6);
    }
}

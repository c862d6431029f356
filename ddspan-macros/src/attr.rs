//! Parses `#[dd_span(key = "value", other.key = 3, span.name = "op")]`.
//!
//! Keys are identifiers joined by dots (`span.name`, `http.route`), which
//! `syn::Meta` (and so darling) cannot read: a dotted key is not a path.
//! Each comma-separated argument is parsed on its own, so every bad argument
//! of an attribute is reported in one build.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, LitStr, Token, UnOp};

use crate::errors::Errors;

/// One `key = value` argument.
pub(crate) struct Arg {
    pub(crate) key: String,
    /// The key's tokens, for errors that point at it.
    pub(crate) key_tokens: TokenStream,
    pub(crate) value: Value,
}

/// A literal tag value.
#[derive(Clone)]
pub(crate) enum Value {
    Str(LitStr),
    Number {
        value: f64,
        tokens: TokenStream,
    },
    /// `child_of = <expression>`: the only argument that is not a literal.
    Parent(Box<Expr>),
}

impl Value {
    pub(crate) fn span(&self) -> Span {
        match self {
            Value::Str(lit) => lit.span(),
            Value::Number { tokens, .. } => tokens
                .clone()
                .into_iter()
                .next()
                .map_or_else(Span::call_site, |t| t.span()),
            Value::Parent(expr) => syn::spanned::Spanned::span(&**expr),
        }
    }
}

pub(crate) fn parse_args(tokens: TokenStream, errors: &mut Errors) -> Vec<Arg> {
    let mut args = Vec::new();
    for chunk in split_commas(tokens) {
        match parse_arg.parse2(chunk) {
            Ok(arg) => args.push(arg),
            Err(error) => errors.push(error),
        }
    }
    args
}

fn split_commas(tokens: TokenStream) -> Vec<TokenStream> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    for tree in tokens {
        match &tree {
            TokenTree::Punct(p) if p.as_char() == ',' => {
                chunks.push(current.drain(..).collect());
            }
            _ => current.push(tree),
        }
    }
    if !current.is_empty() {
        chunks.push(current.into_iter().collect());
    }
    chunks
}

fn parse_arg(input: ParseStream<'_>) -> syn::Result<Arg> {
    if input.peek(Token![=]) {
        return Err(input.error("expected a tag key before `=`, as in `key = \"value\"`"));
    }
    let mut key_tokens = TokenStream::new();
    let first = Ident::parse_any(input)
        .map_err(|e| syn::Error::new(e.span(), "expected a tag key, as in `key = \"value\"`"))?;
    let mut key = first.unraw().to_string();
    first.to_tokens(&mut key_tokens);
    while input.peek(Token![.]) {
        let dot: Token![.] = input.parse()?;
        let part = Ident::parse_any(input)?;
        dot.to_tokens(&mut key_tokens);
        part.to_tokens(&mut key_tokens);
        key.push('.');
        key.push_str(&part.unraw().to_string());
    }
    if input.is_empty() {
        return Err(syn::Error::new_spanned(
            &key_tokens,
            format!("`{key}` needs a value: `{key} = \"...\"`"),
        ));
    }
    input.parse::<Token![=]>()?;
    let expr: Expr = input.parse()?;
    let value = if key == "child_of" {
        Value::Parent(Box::new(expr))
    } else {
        literal_value(&expr)?
    };
    if !input.is_empty() {
        return Err(input.error("expected `,` after the value"));
    }
    Ok(Arg {
        key,
        key_tokens,
        value,
    })
}

fn literal_value(expr: &Expr) -> syn::Result<Value> {
    let not_literal = || {
        syn::Error::new_spanned(
            expr,
            "tag values must be literals: a string, a number or a bool",
        )
    };
    let (lit, negative) = match expr {
        Expr::Lit(ExprLit { lit, .. }) => (lit, false),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr: inner,
            ..
        }) => match inner.as_ref() {
            Expr::Lit(ExprLit { lit, .. }) => (lit, true),
            _ => return Err(not_literal()),
        },
        _ => return Err(not_literal()),
    };
    let sign = if negative { -1.0 } else { 1.0 };
    let number = |value: f64| Value::Number {
        value: sign * value,
        tokens: expr.to_token_stream(),
    };
    match lit {
        Lit::Str(s) if !negative => Ok(Value::Str(s.clone())),
        Lit::Int(i) => i.base10_parse::<f64>().map(number),
        Lit::Float(f) => f.base10_parse::<f64>().map(number),
        Lit::Bool(b) if !negative => Ok(number(if b.value { 1.0 } else { 0.0 })),
        _ => Err(not_literal()),
    }
}

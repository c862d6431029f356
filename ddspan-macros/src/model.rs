//! Model: the arguments of one `#[dd_span(...)]` validated into a span's
//! settings. Special keys set span fields, `child_of` names a parent,
//! `crate` the path of ddspan, every other key is a tag. Nothing here
//! generates code (`emit.rs` does).

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Expr, ExprLit, ExprUnary, Lit, LitStr, UnOp};

use crate::args::{self, Arg};
use crate::errors::Errors;

/// Keys that set span fields rather than tags.
const NAME: &str = "span.name";
const RESOURCE: &str = "resource.name";
const SERVICE: &str = "service.name";
const TYPE: &str = "span.type";
/// `child_of = <expression>`: the parent context, or headers to extract it
/// from. The only value that is evaluated at run time.
const CHILD_OF: &str = "child_of";
/// `crate = path`: where ddspan is, for a crate that renamed the dependency.
const CRATE: &str = "crate";

#[derive(Clone, Default)]
pub(crate) struct Settings {
    pub(crate) name: Option<LitStr>,
    pub(crate) resource: Option<LitStr>,
    pub(crate) service: Option<LitStr>,
    pub(crate) span_type: Option<LitStr>,
    /// Tags in the order written; keys are unique.
    pub(crate) tags: Vec<Tag>,
    pub(crate) child_of: Option<Expr>,
    /// ddspan's path in generated code; `None`: `::ddspan`.
    pub(crate) krate: Option<syn::Path>,
    /// The valid arguments that the members of an `impl` block or module
    /// inherit (all but `span.name` and `child_of`), as written.
    pub(crate) inherited: Vec<Arg>,
}

#[derive(Clone)]
pub(crate) struct Tag {
    pub(crate) key: String,
    pub(crate) value: TagValue,
}

#[derive(Clone)]
pub(crate) enum TagValue {
    Str(LitStr),
    /// Integers, floats and booleans (as 1 and 0) are numeric tags.
    Number(f64),
}

impl Settings {
    /// The settings that `tokens` (an attribute's arguments) describe; every
    /// bad argument is reported to `errors` and left out.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Settings {
        Settings::from_args(args::parse(tokens), errors)
    }

    /// Errors, of syntax or of meaning, are reported in the order written.
    fn from_args(args: Vec<syn::Result<Arg>>, errors: &mut Errors) -> Settings {
        let mut settings = Settings::default();
        let mut seen: Vec<String> = Vec::new();
        for arg in args {
            // A bad value is reported as such, and its key counts as unused.
            let (value, arg) = match arg.and_then(|arg| Ok((Value::of(&arg)?, arg))) {
                Ok(valid) => valid,
                Err(error) => {
                    errors.push(error);
                    continue;
                }
            };
            let key = &arg.key.name;
            if seen.contains(key) {
                errors.push(syn::Error::new_spanned(
                    &arg.key,
                    format!("duplicate key `{key}`"),
                ));
                continue;
            }
            seen.push(key.clone());
            let inherited = key != NAME && key != CHILD_OF;
            match value {
                Value::Field(lit) => {
                    let field = match key.as_str() {
                        NAME => &mut settings.name,
                        RESOURCE => &mut settings.resource,
                        SERVICE => &mut settings.service,
                        _ => &mut settings.span_type,
                    };
                    *field = Some(lit);
                }
                Value::ChildOf(expr) => settings.child_of = Some(expr),
                Value::Crate(path) => settings.krate = Some(path),
                Value::Tag(value) => settings.tags.push(Tag {
                    key: key.clone(),
                    value,
                }),
            }
            if inherited {
                settings.inherited.push(arg);
            }
        }
        settings
    }

    /// The operation name of a function's span: `span.name`, else the
    /// function's name.
    pub(crate) fn function_span_name(&self, function: &str) -> String {
        self.name
            .as_ref()
            .map_or_else(|| function.to_owned(), LitStr::value)
    }

    /// The operation name of a closure's span (Orchestrion's rule):
    /// `span.name`, else the value of its first tag, else
    /// `<enclosing function>.closure`, else `closure`.
    pub(crate) fn closure_span_name(&self, enclosing: Option<&str>) -> String {
        if let Some(name) = &self.name {
            return name.value();
        }
        match self.tags.first().map(|tag| &tag.value) {
            Some(TagValue::Str(lit)) => lit.value(),
            Some(TagValue::Number(value)) => value.to_string(),
            None => enclosing.map_or_else(|| "closure".to_owned(), |f| format!("{f}.closure")),
        }
    }
}

/// What one argument's value means, once checked against its key.
enum Value {
    /// `span.name`, `resource.name`, `service.name`, `span.type`.
    Field(LitStr),
    ChildOf(Expr),
    Crate(syn::Path),
    Tag(TagValue),
}

impl Value {
    fn of(arg: &Arg) -> syn::Result<Value> {
        let key = arg.key.name.as_str();
        match key {
            NAME | RESOURCE | SERVICE | TYPE => match &arg.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(lit), ..
                }) if lit.value().trim().is_empty() => Err(syn::Error::new(
                    lit.span(),
                    format!("`{key}` must not be empty"),
                )),
                Expr::Lit(ExprLit {
                    lit: Lit::Str(lit), ..
                }) => Ok(Value::Field(lit.clone())),
                // Another literal is of the wrong type; anything else is
                // not a literal at all.
                value => tag_value(value).and_then(|_| {
                    Err(syn::Error::new_spanned(
                        value,
                        format!("`{key}` takes a string"),
                    ))
                }),
            },
            CHILD_OF => Ok(Value::ChildOf(arg.value.clone())),
            CRATE => crate_path(&arg.value).map(Value::Crate),
            _ => tag_value(&arg.value).map(Value::Tag),
        }
    }
}

/// A tag's value: a literal string, number or bool (numbers may be negated).
fn tag_value(expr: &Expr) -> syn::Result<TagValue> {
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
    let number = |value: f64| TagValue::Number(sign * value);
    match lit {
        Lit::Str(s) if !negative => Ok(TagValue::Str(s.clone())),
        Lit::Int(i) => i.base10_parse::<f64>().map(number),
        Lit::Float(f) => f.base10_parse::<f64>().map(number),
        Lit::Bool(b) if !negative => Ok(number(if b.value { 1.0 } else { 0.0 })),
        _ => Err(not_literal()),
    }
}

/// `crate = path` or, as serde's `crate = "path"`, the path in a string.
fn crate_path(expr: &Expr) -> syn::Result<syn::Path> {
    match expr {
        Expr::Path(path) if path.qself.is_none() && path.attrs.is_empty() => Ok(path.path.clone()),
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => lit.parse(),
        other => Err(syn::Error::new_spanned(
            other.to_token_stream(),
            "`crate` takes the path of ddspan, as in `crate = ::ddspan`",
        )),
    }
}

#[cfg(test)]
#[path = "model_props.rs"]
mod props;

//! Model: the arguments of one `#[dd_span(...)]` validated into a span's
//! settings. Special keys set span fields, `child_of` names a parent,
//! `crate` the path of ddspan, `error = false` leaves `Err`s unmarked,
//! `span.kind` is checked against Datadog's kinds; every other key is a
//! tag: a literal (known at compile time, free at run time) or an
//! expression over the function's arguments (`key = id`, `key = %name`,
//! `key = ?request`), evaluated as the span starts. Nothing here generates
//! code (`emit.rs` does).

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Expr, ExprLit, ExprUnary, Lit, LitStr, UnOp};

use crate::args::{self, Arg, Format};
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
/// `error = false`: a returned `Err` does not mark the span.
const ERROR: &str = "error";
/// `span.kind = "server"`: one of Datadog's (OpenTelemetry's) span kinds.
const KIND: &str = "span.kind";
const KINDS: &[&str] = &["server", "client", "producer", "consumer", "internal"];
/// Sent as a string, as Datadog's tracers do (the agent reads it from `meta`).
const HTTP_STATUS_CODE: &str = "http.status_code";

#[derive(Clone, Default)]
pub(crate) struct Settings {
    pub(crate) name: Option<LitStr>,
    pub(crate) resource: Option<LitStr>,
    pub(crate) service: Option<LitStr>,
    pub(crate) span_type: Option<LitStr>,
    /// Tags in the order written; keys are unique.
    pub(crate) tags: Vec<Tag>,
    pub(crate) child_of: Option<Expr>,
    /// `error = false`: a returned `Err` leaves the span unmarked.
    pub(crate) ignore_errors: bool,
    /// ddspan's path in generated code; `None`: `::ddspan`.
    pub(crate) krate: Option<syn::Path>,
    /// The valid arguments that the members of an `impl` block or module
    /// inherit (all but `span.name`, `child_of` and tags computed from
    /// arguments), as written.
    pub(crate) inherited: Vec<Arg>,
}

#[derive(Clone)]
pub(crate) struct Tag {
    pub(crate) key: String,
    pub(crate) value: TagValue,
}

#[derive(Clone)]
pub(crate) enum TagValue {
    Str(String),
    /// Integers, floats and booleans (as 1 and 0) are numeric tags.
    Number(f64),
    /// An expression evaluated as the span starts: as it is (its type
    /// decides, through `AsTagValue`), or formatted.
    Dynamic {
        format: Option<Format>,
        expr: Expr,
    },
}

impl TagValue {
    pub(crate) fn is_dynamic(&self) -> bool {
        matches!(self, TagValue::Dynamic { .. })
    }
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
            let inherited = key != NAME
                && key != CHILD_OF
                && !matches!(&value, Value::Tag(t) if t.is_dynamic());
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
                Value::RecordErrors(record) => settings.ignore_errors = !record,
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
        // The first tag known at compile time.
        let first = self.tags.iter().find_map(|tag| match &tag.value {
            TagValue::Str(text) => Some(text.clone()),
            TagValue::Number(value) => Some(value.to_string()),
            TagValue::Dynamic { .. } => None,
        });
        first.unwrap_or_else(|| {
            enclosing.map_or_else(|| "closure".to_owned(), |f| format!("{f}.closure"))
        })
    }

    /// The tags computed from arguments, if any (for errors about where
    /// they may be).
    pub(crate) fn first_dynamic_tag(&self) -> Option<&Expr> {
        self.tags.iter().find_map(|tag| match &tag.value {
            TagValue::Dynamic { expr, .. } => Some(expr),
            _ => None,
        })
    }
}

/// What one argument's value means, once checked against its key.
enum Value {
    /// `span.name`, `resource.name`, `service.name`, `span.type`.
    Field(LitStr),
    ChildOf(Expr),
    Crate(syn::Path),
    /// `error = true | false`.
    RecordErrors(bool),
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
                value if arg.format.is_none() && is_literal(value) => {
                    tag_value(value).and_then(|_| {
                        Err(syn::Error::new_spanned(
                            value,
                            format!("`{key}` takes a string"),
                        ))
                    })
                }
                value => Err(syn::Error::new_spanned(
                    value,
                    format!("`{key}` takes a string literal"),
                )),
            },
            CHILD_OF => Ok(Value::ChildOf(arg.value.clone())),
            CRATE => crate_path(&arg.value).map(Value::Crate),
            ERROR => match &arg.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) if arg.format.is_none() => Ok(Value::RecordErrors(b.value)),
                value => Err(syn::Error::new_spanned(
                    value,
                    "`error` takes `false` (a returned `Err` does not mark the span) or `true` (the default)",
                )),
            },
            KIND => match &arg.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(lit), ..
                }) if arg.format.is_none() && KINDS.contains(&lit.value().as_str()) => {
                    Ok(Value::Tag(TagValue::Str(lit.value())))
                }
                value => Err(syn::Error::new_spanned(
                    value,
                    "`span.kind` is one of \"server\", \"client\", \"producer\", \"consumer\", \"internal\"",
                )),
            },
            _ if arg.format.is_some() || !is_literal(&arg.value) => {
                Ok(Value::Tag(TagValue::Dynamic {
                    format: arg.format.clone(),
                    expr: arg.value.clone(),
                }))
            }
            HTTP_STATUS_CODE => match tag_value(&arg.value)? {
                TagValue::Number(code) => Ok(Value::Tag(TagValue::Str(number_text(code)))),
                other => Ok(Value::Tag(other)),
            },
            _ => tag_value(&arg.value).map(Value::Tag),
        }
    }
}

/// A literal, or a negated one: a value known at compile time (a bad one
/// is an error, not an expression to evaluate).
fn is_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Lit(_) => true,
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => matches!(**expr, Expr::Lit(_)),
        _ => false,
    }
}

/// A number as the runtime writes it in `meta`: `200`, not `200.0`.
fn number_text(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        value.to_string()
    }
}

/// A tag's value: a literal string, number or bool (numbers may be negated).
fn tag_value(expr: &Expr) -> syn::Result<TagValue> {
    let not_literal =
        || syn::Error::new_spanned(expr, "a literal tag value is a string, a number or a bool");
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
        Lit::Str(s) if !negative => Ok(TagValue::Str(s.value())),
        Lit::Int(i) => i.base10_parse::<f64>().map(number),
        Lit::Float(f) => f.base10_parse::<f64>().map(number),
        Lit::Bool(b) if !negative => Ok(number(if b.value { 1.0 } else { 0.0 })),
        _ => Err(not_literal()),
    }
}

/// Reports every name a tag's expression uses that is not one of the
/// function's (or closure's) `arguments`: tags are evaluated as the span
/// starts, before the body runs, so its locals do not exist yet. Names of
/// items (`CONSTANT`, `Type::new`, a called `function`) are not checked;
/// rustc reports those that do not exist.
pub(crate) fn check_tag_arguments(
    settings: &Settings,
    arguments: &[String],
    function: &str,
    errors: &mut Errors,
) {
    use syn::visit::Visit;
    struct Names<'a> {
        arguments: &'a [String],
        function: &'a str,
        errors: &'a mut Errors,
    }
    impl<'ast> Visit<'ast> for Names<'_> {
        fn visit_expr_path(&mut self, path: &'ast syn::ExprPath) {
            let Some(name) = path.path.get_ident() else {
                return; // a path to an item
            };
            let text = name.unraw().to_string();
            let variable = text.starts_with(|c: char| c.is_lowercase() || c == '_');
            if path.qself.is_none() && variable && !self.arguments.contains(&text) {
                self.errors.push(syn::Error::new(
                    name.span(),
                    format!(
                        "`{text}` is not an argument of `{}`: a tag's expression is evaluated as the span starts, before the body runs, and may use only the arguments",
                        self.function
                    ),
                ));
            }
        }
        fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
            // A called path names a function, not a variable.
            if !matches!(&*call.func, Expr::Path(_)) {
                self.visit_expr(&call.func);
            }
            for arg in &call.args {
                self.visit_expr(arg);
            }
        }
        // Closures bind names of their own.
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        fn visit_expr_block(&mut self, _: &'ast syn::ExprBlock) {}
        fn visit_expr_match(&mut self, m: &'ast syn::ExprMatch) {
            self.visit_expr(&m.expr);
        }
    }
    use syn::ext::IdentExt;
    let mut names = Names {
        arguments,
        function,
        errors,
    };
    for tag in &settings.tags {
        if let TagValue::Dynamic { expr, .. } = &tag.value {
            names.visit_expr(expr);
        }
    }
}

/// The names an argument list binds (`self` for a receiver), from its
/// tokens (the parenthesized list of a signature or a closure's `|..|`).
pub(crate) fn argument_names<'a>(patterns: impl IntoIterator<Item = &'a syn::Pat>) -> Vec<String> {
    use syn::ext::IdentExt;
    use syn::visit::Visit;
    #[derive(Default)]
    struct Bound(Vec<String>);
    impl<'ast> Visit<'ast> for Bound {
        fn visit_pat_ident(&mut self, pat: &'ast syn::PatIdent) {
            self.0.push(pat.ident.unraw().to_string());
            syn::visit::visit_pat_ident(self, pat);
        }
    }
    let mut bound = Bound::default();
    for pattern in patterns {
        bound.visit_pat(pattern);
    }
    bound.0
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

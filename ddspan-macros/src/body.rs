//! Model: a function's body, read once, and its early exits (`return`,
//! `?`), found and rewritten into `break`s behind [`Body::read`] and
//! [`Body::into_breaks`].
//!
//! A body is parsed only when its tokens show more than `return` and `?`
//! (a closure, an item, an `async` block, an attribute, a macro call):
//! most bodies are passed on as tokens, their exits found and rewritten
//! on tokens too; the parsed path (`ExitsToBreaks`) takes the rest. `syn`
//! runs unoptimized in debug builds, and the macro's own run time is part
//! of what a user waits for.
//!
//! What the token path saves, in instructions spent inside the macro while
//! rustc compiles the 200 functions of `scripts/compile-cost.sh` (callgrind;
//! deterministic, where wall time on a shared machine is not):
//! - plain bodies: 77 M with the token scan, 121 M with every body parsed
//!   (-36 %);
//! - fallible bodies (`let v = s.parse()?; Ok(v)`): 212 M with the token
//!   rewrite, 241 M with every body parsed and rewritten by syn (-12 %),
//!   263 M with the scan but no token rewrite.
//!
//! rustc ran at about 3 G instructions/s here (`-Z time-passes`), so that
//! is ~0.07 ms per plain and ~0.05 ms per fallible function: 5-10 % of
//! the whole per-function cost of the attribute, for ~180 lines.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{Block, Expr, ExprCall, Ident, Item, Stmt};

use crate::emit;

/// A function's body: the user's braces and what is inside them.
pub(crate) struct Body {
    /// The span of the user's braces, kept on the rewritten body: the item
    /// then lies wholly in user code, so lints such as `dead_code` still
    /// report on it.
    pub(crate) braces: Span,
    code: Code,
    pub(crate) exits: Exits,
}

enum Code {
    /// Tokens with no closure, item, `async`, attribute or macro call.
    Tokens(TokenStream),
    Parsed(Vec<Stmt>),
}

/// How a body can leave before its end (`return` or `?`), not counting
/// closures, async blocks and items inside it, which have their own.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Exits {
    /// Only at its end.
    None,
    /// Through `return` or `?` outside macros (`question_mark`: a `?`).
    Visible { question_mark: bool },
    /// Maybe through a macro, which may hide a `return` or `?`
    /// (`anyhow::bail!`) that the rewrite cannot see.
    Hidden,
}

/// A body ending in the future a function returns.
pub(crate) enum FutureTail<'a> {
    /// `async { ... }`.
    Async(&'a Expr),
    /// `Box::pin(async { ... })`, as `#[async_trait]` writes.
    BoxPin { callee: &'a Expr, future: &'a Expr },
}

impl Body {
    /// Reads the body in `braces`; `None` when it does not parse (rustc,
    /// not the macro, then reports what is wrong with it).
    pub(crate) fn read(braces: &Group) -> Option<Body> {
        let tokens = braces.stream();
        let (code, exits) = match scan_tokens(tokens.clone()) {
            Scan::Plain => (Code::Tokens(tokens), Exits::None),
            Scan::Exits { question_mark } => {
                (Code::Tokens(tokens), Exits::Visible { question_mark })
            }
            Scan::Complex => return Some(Body::parsed(parse_stmts(tokens)?, braces.span())),
        };
        Some(Body {
            braces: braces.span(),
            code,
            exits,
        })
    }

    /// A body already parsed (a method of an `impl` block).
    pub(crate) fn parsed(stmts: Vec<Stmt>, braces: Span) -> Body {
        let exits = parsed_exits(&stmts);
        Body {
            braces,
            code: Code::Parsed(stmts),
            exits,
        }
    }

    /// The statements, to rewrite annotated closures in; a body of tokens
    /// has none (no `#`).
    pub(crate) fn stmts_mut(&mut self) -> Option<&mut Vec<Stmt>> {
        match &mut self.code {
            Code::Tokens(_) => None,
            Code::Parsed(stmts) => Some(stmts),
        }
    }

    /// The future the body ends in, and the statements before it.
    pub(crate) fn future_tail(&self) -> Option<(&[Stmt], FutureTail<'_>)> {
        let Code::Parsed(stmts) = &self.code else {
            return None;
        };
        let (Stmt::Expr(tail, None), leading) = stmts.split_last()? else {
            return None;
        };
        let tail = match tail {
            Expr::Async(_) => FutureTail::Async(tail),
            Expr::Call(ExprCall { func, args, .. }) if args.len() == 1 => {
                let is_box_pin = matches!(&**func, Expr::Path(p)
                    if p.path.segments.len() >= 2
                        && p.path.segments.iter().rev().nth(1).is_some_and(|s| s.ident == "Box")
                        && p.path.segments.last().is_some_and(|s| s.ident == "pin"));
                let future = args.first()?;
                if !(is_box_pin && matches!(future, Expr::Async(_))) {
                    return None;
                }
                FutureTail::BoxPin {
                    callee: func,
                    future,
                }
            }
            _ => return None,
        };
        Some((leading, tail))
    }

    /// The statements as written.
    pub(crate) fn into_stmts(self) -> TokenStream {
        match self.code {
            Code::Tokens(tokens) => tokens,
            Code::Parsed(stmts) => stmts_tokens(&stmts),
        }
    }

    /// The statements with `return x` as `break 'label x` and `e?` as
    /// `match e { Ok(v) => v, Err(e) => break 'label Err(From::from(e)) }`
    /// (what `?` does for a `Result`), outside closures, async blocks,
    /// items and macros: on tokens where every `?`'s operand is plain,
    /// else parsed. The body back when syn cannot parse it.
    pub(crate) fn into_breaks(self, label: &syn::Lifetime) -> Result<TokenStream, Body> {
        let mut stmts = match self.code {
            Code::Tokens(tokens) => match tokens_to_breaks(tokens.clone(), label) {
                Some(rewritten) => return Ok(rewritten),
                None => match parse_stmts(tokens.clone()) {
                    Some(stmts) => stmts,
                    None => {
                        return Err(Body {
                            code: Code::Tokens(tokens),
                            ..self
                        });
                    }
                },
            },
            Code::Parsed(stmts) => stmts,
        };
        let mut rewriter = ExitsToBreaks { label };
        for stmt in &mut stmts {
            rewriter.visit_stmt_mut(stmt);
        }
        Ok(stmts_tokens(&stmts))
    }
}

pub(crate) fn stmts_tokens(stmts: &[Stmt]) -> TokenStream {
    let mut tokens = TokenStream::new();
    for stmt in stmts {
        stmt.to_tokens(&mut tokens);
    }
    tokens
}

fn parse_stmts(tokens: TokenStream) -> Option<Vec<Stmt>> {
    syn::parse::Parser::parse2(Block::parse_within, tokens).ok()
}

/// What a body's tokens show, without parsing them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scan {
    /// Nothing to rewrite or look at: no `return`, `?`, attribute, macro
    /// call, closure, item or `async`.
    Plain,
    /// As `Plain`, but with `return` or `?` (`question_mark`), all of them
    /// the function's own: they can be rewritten as tokens.
    Exits { question_mark: bool },
    /// Anything else: the body is parsed.
    Complex,
}

fn scan_tokens(tokens: TokenStream) -> Scan {
    fn walk(tokens: TokenStream, exits: &mut Option<bool>) -> bool {
        let mut previous_ident = false;
        let mut bang_after_ident = false;
        for tree in tokens {
            let simple = match &tree {
                TokenTree::Punct(p) => match p.as_char() {
                    '?' => {
                        *exits = Some(true);
                        true
                    }
                    '#' | '|' => false,
                    _ => true,
                },
                TokenTree::Ident(i) => {
                    if i == "return" {
                        *exits = Some(exits.unwrap_or(false));
                    }
                    !ITEM_OR_ASYNC.iter().any(|word| i == word)
                }
                // A group right after `name!` is a macro call.
                TokenTree::Group(g) => !bang_after_ident && walk(g.stream(), exits),
                TokenTree::Literal(_) => true,
            };
            if !simple {
                return false;
            }
            bang_after_ident =
                previous_ident && matches!(&tree, TokenTree::Punct(p) if p.as_char() == '!');
            previous_ident = matches!(tree, TokenTree::Ident(_));
        }
        true
    }
    /// Words that start an item or an `async` block, whose `return` and `?`
    /// are not the function's.
    const ITEM_OR_ASYNC: &[&str] = &[
        "async",
        "const",
        "enum",
        "extern",
        "fn",
        "impl",
        "macro_rules",
        "mod",
        "static",
        "struct",
        "trait",
        "type",
        "union",
        "use",
    ];
    let mut exits = None;
    if !walk(tokens, &mut exits) {
        return Scan::Complex;
    }
    match exits {
        None => Scan::Plain,
        Some(question_mark) => Scan::Exits { question_mark },
    }
}

/// The exits of a parsed body.
fn parsed_exits(stmts: &[Stmt]) -> Exits {
    struct Finder(Exits);
    impl Finder {
        fn visible(&mut self, question_mark: bool) {
            self.0 = match self.0 {
                Exits::None => Exits::Visible { question_mark },
                Exits::Visible { question_mark: q } => Exits::Visible {
                    question_mark: q || question_mark,
                },
                Exits::Hidden => Exits::Hidden,
            };
        }
    }
    impl<'ast> Visit<'ast> for Finder {
        fn visit_expr_return(&mut self, node: &'ast syn::ExprReturn) {
            self.visible(false);
            syn::visit::visit_expr_return(self, node);
        }
        fn visit_expr_try(&mut self, node: &'ast syn::ExprTry) {
            self.visible(true);
            syn::visit::visit_expr_try(self, node);
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {}
        fn visit_expr_const(&mut self, _: &'ast syn::ExprConst) {}
        fn visit_item(&mut self, _: &'ast Item) {}
        fn visit_macro(&mut self, mac: &'ast syn::Macro) {
            if !macro_cannot_exit(mac) {
                self.0 = Exits::Hidden;
            }
        }
    }
    let mut finder = Finder(Exits::None);
    for stmt in stmts {
        finder.visit_stmt(stmt);
    }
    finder.0
}

/// Whether a macro call certainly neither returns nor uses `?`: one of the
/// standard formatting, assertion and logging macros, with no `return`,
/// `?` or call of another macro (which may hide them) among its tokens.
fn macro_cannot_exit(mac: &syn::Macro) -> bool {
    const PLAIN: &[&str] = &[
        "assert",
        "assert_eq",
        "assert_ne",
        "cfg",
        "column",
        "concat",
        "dbg",
        "debug",
        "debug_assert",
        "debug_assert_eq",
        "debug_assert_ne",
        "env",
        "eprint",
        "eprintln",
        "error",
        "file",
        "format",
        "format_args",
        "include_bytes",
        "include_str",
        "info",
        "line",
        "matches",
        "module_path",
        "option_env",
        "panic",
        "print",
        "println",
        "stringify",
        "todo",
        "trace",
        "unimplemented",
        "unreachable",
        "vec",
        "warn",
        "write",
        "writeln",
    ];
    let plain = |name: &Ident| PLAIN.contains(&name.to_string().as_str());
    fn exits(tokens: TokenStream, plain: &dyn Fn(&Ident) -> bool) -> bool {
        // `name` when the previous tokens are `name!`: the next group is
        // the arguments of a macro call (`vec![parse!(x)]`).
        let (mut previous, mut called) = (None, None);
        for tree in tokens {
            let exit = match &tree {
                TokenTree::Punct(p) => p.as_char() == '?',
                TokenTree::Ident(i) => i == "return",
                TokenTree::Group(g) => {
                    called.as_ref().is_some_and(|name| !plain(name)) || exits(g.stream(), plain)
                }
                TokenTree::Literal(_) => false,
            };
            if exit {
                return true;
            }
            called = match &tree {
                TokenTree::Punct(p) if p.as_char() == '!' => previous.take(),
                _ => None,
            };
            previous = match tree {
                TokenTree::Ident(i) => Some(i),
                _ => None,
            };
        }
        false
    }
    mac.path
        .segments
        .last()
        .is_some_and(|last| plain(&last.ident))
        && !exits(mac.tokens.clone(), &plain)
}

/// The parsed rewrite of [`Body::into_breaks`]. The new tokens carry the
/// user's spans (errors point at the `?` or the `return`) at mixed-site
/// hygiene (lints treat them as generated).
struct ExitsToBreaks<'a> {
    label: &'a syn::Lifetime,
}

impl VisitMut for ExitsToBreaks<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Closure(_) | Expr::Async(_) | Expr::Const(_) | Expr::Macro(_) => {}
            Expr::Return(node) => {
                syn::visit_mut::visit_expr_return_mut(self, node);
                let mut tokens = emit::break_to(self.label, node.return_token.span);
                node.expr.to_tokens(&mut tokens);
                *expr = Expr::Verbatim(tokens);
            }
            Expr::Try(node) => {
                syn::visit_mut::visit_expr_try_mut(self, node);
                let operand = node.expr.to_token_stream();
                let matched = emit::try_to_match(operand, self.label, node.question_token.span);
                *expr = Expr::Verbatim(matched.into_token_stream());
            }
            _ => syn::visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_item_mut(&mut self, _: &mut Item) {}

    fn visit_macro_mut(&mut self, _: &mut syn::Macro) {}
}

/// [`Body::into_breaks`] on tokens ([`Scan::Exits`]): `None` when a `?`'s
/// operand is not plainly a chain of paths, calls, fields, methods and
/// indexing, which the parsed rewrite then handles.
fn tokens_to_breaks(tokens: TokenStream, label: &syn::Lifetime) -> Option<TokenStream> {
    let mut out: Vec<TokenTree> = Vec::new();
    for tree in tokens {
        match tree {
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), tokens_to_breaks(g.stream(), label)?);
                group.set_span(g.span());
                out.push(group.into());
            }
            TokenTree::Ident(i) if i == "return" => out.extend(emit::break_to(label, i.span())),
            TokenTree::Punct(p) if p.as_char() == '?' => {
                let start = operand_start(&out)?;
                let operand = out.drain(start..).collect();
                out.push(emit::try_to_match(operand, label, p.span()).into());
            }
            other => out.push(other),
        }
    }
    Some(out.into_iter().collect())
}

/// Where the operand of a `?` after `seq` starts: the postfix chain that
/// ends `seq` (`a::b::<T>(x).c[0].d()`), read backwards.
fn operand_start(seq: &[TokenTree]) -> Option<usize> {
    const KEYWORDS: &[&str] = &[
        "as", "break", "const", "continue", "else", "enum", "extern", "false", "fn", "for", "if",
        "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
        "static", "struct", "trait", "true", "type", "unsafe", "use", "where", "while", "async",
        "await", "dyn", "box", "yield", "try", "gen", "do", "become", "macro",
    ];
    let punct =
        |i: usize, c: char| matches!(seq.get(i), Some(TokenTree::Punct(p)) if p.as_char() == c);
    // A name that may be part of an expression (not a keyword, a label or a
    // lifetime).
    let name = |i: usize| {
        matches!(seq.get(i), Some(TokenTree::Ident(w)) if !KEYWORDS.iter().any(|k| w == k))
            && !(i > 0 && punct(i - 1, '\''))
    };
    // Whether `seq[..i]` ends with something a call, index, field or method
    // applies to; `None`: cannot tell (a block or struct literal).
    let chain_before = |i: usize| -> Option<bool> {
        let Some(j) = i.checked_sub(1) else {
            return Some(false);
        };
        match &seq[j] {
            TokenTree::Group(g) => (g.delimiter() != Delimiter::Brace).then_some(true),
            TokenTree::Literal(_) => Some(true),
            TokenTree::Ident(_) => Some(name(j)),
            TokenTree::Punct(p) => Some(p.as_char() == '>'),
        }
    };
    // `.` as a field or method access (not `..`).
    let dot = |i: usize| punct(i, '.') && !(i > 0 && punct(i - 1, '.'));
    let path_sep = |i: usize| i > 0 && punct(i, ':') && punct(i - 1, ':');
    let mut i = seq.len();
    loop {
        let last = i.checked_sub(1)?;
        match &seq[last] {
            TokenTree::Group(g) if g.delimiter() != Delimiter::Brace => {
                i = last;
                if !chain_before(i)? {
                    break;
                }
            }
            TokenTree::Ident(_) | TokenTree::Literal(_) => {
                if matches!(seq[last], TokenTree::Ident(_)) && !name(last) {
                    return None;
                }
                i = last;
                if i > 0 && dot(i - 1) {
                    i -= 1;
                    if !chain_before(i)? {
                        return None;
                    }
                } else if i > 1 && path_sep(i - 1) {
                    i -= 2;
                    if !(name(i.wrapping_sub(1)) || (i > 0 && punct(i - 1, '>'))) {
                        break; // a leading `::`
                    }
                } else {
                    break;
                }
            }
            TokenTree::Punct(p) if p.as_char() == '>' => {
                // Generic arguments, which must follow `::` (a turbofish).
                let mut depth = 0_usize;
                let mut j = last;
                loop {
                    let arrow = j > 0 && punct(j - 1, '-');
                    match &seq[j] {
                        TokenTree::Punct(p) if p.as_char() == '>' && !arrow => depth += 1,
                        TokenTree::Punct(p) if p.as_char() == '<' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j = j.checked_sub(1)?;
                }
                if !(j > 1 && path_sep(j - 1) && name(j.wrapping_sub(3))) {
                    return None;
                }
                i = j - 2;
            }
            _ => return None,
        }
    }
    // `x as T?` is not `x as (T?)`: leave such code to the parser.
    if i > 0 && matches!(&seq[i - 1], TokenTree::Ident(w) if w == "as") {
        return None;
    }
    (i < seq.len()).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(body: &str) -> Scan {
        scan_tokens(body.parse().unwrap())
    }

    /// The body with its exits as `break`s, printed; `None` if left to the
    /// parser.
    fn breaks(body: &str) -> Option<String> {
        tokens_to_breaks(body.parse().unwrap(), &emit::body_label(Span::call_site()))
            .map(|t| t.to_string())
    }

    /// The `?` operands of a rewritten body, in order.
    fn operands(body: &str) -> Vec<String> {
        let text = breaks(body).expect("rewritten as tokens");
        text.match_indices("match (")
            .map(|(at, _)| {
                let rest = &text[at + "match (".len()..];
                let end = rest.find(") {").unwrap();
                rest[..end].replace(' ', "")
            })
            .collect()
    }

    #[test]
    fn bodies_are_scanned_as_tokens() {
        assert_eq!(scan("a + b.len() as u64"), Scan::Plain);
        assert_eq!(
            scan("let x = y?; Ok(x)"),
            Scan::Exits {
                question_mark: true
            }
        );
        assert_eq!(
            scan("if a { return Ok(1); } Ok(2)"),
            Scan::Exits {
                question_mark: false
            }
        );
        for complex in [
            "v.iter().map(|x| x?)",
            "format!(\"{}\", x?)",
            "async move { x? }",
            "fn inner() -> Result<(), E> { x?; Ok(()) } inner()",
            "#[allow(unused)] let a = 1; a",
            "const { 1 }",
        ] {
            assert_eq!(scan(complex), Scan::Complex, "{complex}");
        }
    }

    #[test]
    fn operands_are_whole_postfix_chains() {
        assert_eq!(operands("let v: u64 = b.parse()?; Ok(v)"), ["b.parse()"]);
        let chained = breaks("s.get(i)?.trim().parse::<Vec<u8>>()?.len()")
            .unwrap()
            .replace(' ', "");
        assert!(chained.starts_with("(match((match(s.get(i)){"), "{chained}");
        assert!(
            chained.contains("}).trim().parse::<Vec<u8>>()){"),
            "{chained}"
        );
        assert!(chained.ends_with(").len()"), "{chained}");
        assert_eq!(operands("x = ::std::fs::read(p)?;"), ["::std::fs::read(p)"]);
        assert_eq!(operands("-a.0[1]?"), ["a.0[1]"]);
        assert_eq!(operands("&Vec::<u8>::new()?"), ["Vec::<u8>::new()"]);
        assert_eq!(operands("f::<fn() -> u8>(g)?"), ["f::<fn()->u8>(g)"]);
        assert_eq!(operands("1 < a? && b > c?"), ["a", "c"]);
        assert_eq!(operands("foo(a?, (b)?)"), ["a", "(b)"]);
        assert_eq!(operands("return x?"), ["x"]);
    }

    #[test]
    fn unclear_operands_are_left_to_the_parser() {
        for body in [
            "match x { _ => y }?",
            "S { a }.b?",
            "x as u64?",
            "<T as Tr>::f()?",
            "a > (b)?",
            "?",
        ] {
            assert_eq!(breaks(body), None, "{body}");
        }
    }

    #[test]
    fn macros_inside_standard_macros_may_hide_exits() {
        let exits = |body: &str| parsed_exits(&parse_stmts(body.parse().unwrap()).unwrap());
        assert_eq!(exits("println!(\"{}\", a != b); Ok(())"), Exits::None);
        assert_eq!(
            exits("assert_eq!(a, format!(\"{}\", b)); Ok(())"),
            Exits::None
        );
        assert_eq!(exits("let v = vec![parse!(a)]; Ok(v)"), Exits::Hidden);
        assert_eq!(exits("assert!(ensure!(a)); Ok(x?)"), Exits::Hidden);
        assert_eq!(
            exits("assert!(!(a)); Ok(x?)"),
            Exits::Visible {
                question_mark: true
            }
        );
    }

    #[test]
    fn returns_become_breaks() {
        let text = breaks("if a { return Err(e); } return;").unwrap();
        assert_eq!(text.matches("break '__ddspan_body").count(), 2, "{text}");
        assert!(!text.contains("return"), "{text}");
    }

    /// Both rewriters behind `Body::into_breaks` write the same tokens
    /// where both apply: which one runs is a matter of speed only.
    #[test]
    fn token_and_parsed_rewrites_agree() {
        let label = emit::body_label(Span::call_site());
        for body in [
            "let v: u64 = b.parse()?; Ok(v)",
            "if a { return Err(e); } Ok(s.get(i)?.trim().parse::<u8>()?.len())",
            "x = ::std::fs::read(p)?; foo(a?, (b)?); return Ok(-a.0[1]?)",
            "while let Some(x) = it.next() { if x? > 3 { return Ok(x?); } } Ok(0)",
            "let r = &Vec::<u8>::new()?; loop { break; } Ok(r.len())",
        ] {
            let tokens: TokenStream = body.parse().unwrap();
            assert_eq!(
                scan_tokens(tokens.clone()),
                Scan::Exits {
                    question_mark: true
                },
                "{body}"
            );
            let on_tokens = tokens_to_breaks(tokens.clone(), &label).expect(body);
            let parsed = Body::parsed(parse_stmts(tokens).unwrap(), Span::call_site());
            let Ok(on_syntax) = parsed.into_breaks(&label) else {
                panic!("{body}");
            };
            // Equal but for the spacing of punctuation (`::<` as printed).
            let text = |tokens: TokenStream| tokens.to_string().replace(' ', "");
            assert_eq!(text(on_tokens), text(on_syntax), "{body}");
        }
    }
}

//! Model: what the rewrite needs to know of a function's signature, read
//! once from it.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::visit_mut::{self, VisitMut};
use syn::{ReturnType, Signature, Token, Type};

pub(crate) struct FnShape {
    /// The function's name.
    pub(crate) name: String,
    /// The `const` keyword, if any: such a function cannot be instrumented.
    pub(crate) constness: Option<Span>,
    pub(crate) is_async: bool,
    /// `fn main()`, which flushes the tracer before it returns.
    pub(crate) is_main: bool,
    /// An `async fn` rewritten as a `fn` returning a future, which captures
    /// the span active where it is called (see `plan::Plan::Async`); set by
    /// the caller, which rewrites the signature.
    pub(crate) parent_at_call: bool,
    /// With `parent_at_call`: what the arguments bind, moved into the
    /// future as an `async fn` moves them.
    pub(crate) moved: Vec<Moved>,
    pub(crate) output: Output,
    /// The arguments' tokens, read only when a tag's expression needs
    /// their names ([`FnShape::argument_names`]).
    inputs: TokenStream,
}

impl FnShape {
    /// From a parsed signature (a member of an `impl` block or module).
    pub(crate) fn of(sig: &Signature) -> FnShape {
        FnShape {
            name: sig.ident.to_string(),
            constness: sig.constness.map(|c| c.span),
            is_async: sig.asyncness.is_some(),
            is_main: sig.ident == "main" && sig.inputs.is_empty(),
            parent_at_call: false,
            moved: Vec::new(),
            output: Output::of(&sig.output),
            inputs: sig.inputs.to_token_stream(),
        }
    }

    /// The names the arguments bind (`self` for a receiver); none when
    /// they do not parse (rustc then reports them).
    pub(crate) fn argument_names(&self) -> Vec<String> {
        use syn::punctuated::Punctuated;
        let parser = Punctuated::<syn::FnArg, Token![,]>::parse_terminated;
        let Ok(inputs) = syn::parse::Parser::parse2(parser, self.inputs.clone()) else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for input in &inputs {
            match input {
                syn::FnArg::Receiver(_) => names.push("self".to_owned()),
                syn::FnArg::Typed(typed) => {
                    names.extend(crate::model::argument_names([&*typed.pat]));
                }
            }
        }
        names
    }

    /// From the tokens of a function item before its body: outer
    /// attributes, visibility, then `const async unsafe extern "C" fn
    /// name<...>(...) -> Type where ...`, with only the return type parsed.
    /// `None` for anything else (the item is then parsed whole).
    ///
    /// A second reader, kept for compile time: parsing the whole signature
    /// with syn (its parameters' patterns and types, which the rewrite
    /// never looks at) took 30 % more of the macro's instructions for a
    /// plain function (callgrind: 111 M instead of 81 M for the 200
    /// functions of `scripts/compile-cost.sh`).
    pub(crate) fn from_head(trees: &[TokenTree]) -> Option<FnShape> {
        let punct = |i: usize, c: char| matches!(trees.get(i), Some(TokenTree::Punct(p)) if p.as_char() == c);
        let group = |i: usize, delimiter: Delimiter| matches!(trees.get(i), Some(TokenTree::Group(g)) if g.delimiter() == delimiter);
        let word = |i: usize, w: &str| matches!(trees.get(i), Some(TokenTree::Ident(x)) if x == w);
        let mut i = 0;
        // Outer attributes (doc comments too) and the visibility.
        while punct(i, '#') && group(i + 1, Delimiter::Bracket) {
            i += 2;
        }
        if word(i, "pub") {
            i += if group(i + 1, Delimiter::Parenthesis) {
                2
            } else {
                1
            };
        }
        let (mut constness, mut is_async) = (None, false);
        loop {
            match trees.get(i)? {
                TokenTree::Ident(w) if w == "fn" => break,
                TokenTree::Ident(w) if w == "const" => constness = Some(w.span()),
                TokenTree::Ident(w) if w == "async" => is_async = true,
                TokenTree::Ident(w) if w == "unsafe" || w == "extern" => {}
                TokenTree::Literal(_) => {} // the ABI
                _ => return None,
            }
            i += 1;
        }
        let Some(TokenTree::Ident(name)) = trees.get(i + 1) else {
            return None;
        };
        i += 2;
        if punct(i, '<') {
            // Generics, up to their closing `>` (not the one of a `->`).
            let mut depth = 0_usize;
            loop {
                let arrow = i > 0 && punct(i - 1, '-');
                match trees.get(i)? {
                    TokenTree::Punct(p) if p.as_char() == '<' => depth += 1,
                    TokenTree::Punct(p) if p.as_char() == '>' && !arrow => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        let Some(TokenTree::Group(inputs)) = trees.get(i) else {
            return None;
        };
        if inputs.delimiter() != Delimiter::Parenthesis {
            return None;
        }
        i += 1;
        let output = if punct(i, '-') && punct(i + 1, '>') {
            let arrow = Token![->](trees[i].span());
            let end = trees[i + 2..]
                .iter()
                .position(|t| matches!(t, TokenTree::Ident(w) if w == "where"))
                .map_or(trees.len(), |p| i + 2 + p);
            let ty: Type = syn::parse2(trees[i + 2..end].iter().cloned().collect()).ok()?;
            ReturnType::Type(arrow, Box::new(ty))
        } else if i == trees.len() || word(i, "where") {
            ReturnType::Default
        } else {
            return None;
        };
        let name = name.to_string();
        Some(FnShape {
            is_main: name == "main" && inputs.stream().is_empty(),
            name,
            constness,
            is_async,
            parent_at_call: false,
            moved: Vec::new(),
            output: Output::of(&output),
            inputs: inputs.stream(),
        })
    }
}

/// What one argument of an `async fn` binds, moved into its future.
pub(crate) enum Moved {
    /// `self`, `&self`, `mut self`, ...: captured as it is.
    Receiver,
    /// An argument that is a name (its `mut`, taken off the signature, goes
    /// on the binding inside the future).
    Binding { name: syn::Ident, mutable: bool },
    /// Any other pattern (`_`, `(a, b)`, `State(s)`): the argument is
    /// renamed `argument` in the signature and destructured in the
    /// future, as an `async fn` does.
    Pattern {
        pattern: Box<syn::Pat>,
        argument: syn::Ident,
    },
}

impl FnShape {
    /// Takes what the arguments of `sig` bind, for an `async fn` that
    /// becomes a `fn` returning its future: the `mut`s of its patterns
    /// move onto bindings inside the future (`let mut x = x;`), as an
    /// `async fn`'s desugaring binds them.
    pub(crate) fn take_moved(&mut self, sig: &mut Signature) {
        let mut moved = Vec::new();
        for (index, input) in sig.inputs.iter_mut().enumerate() {
            let typed = match input {
                syn::FnArg::Receiver(_) => {
                    moved.push(Moved::Receiver);
                    continue;
                }
                syn::FnArg::Typed(typed) => typed,
            };
            match &mut *typed.pat {
                syn::Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                    moved.push(Moved::Binding {
                        name: pat.ident.clone(),
                        mutable: pat.mutability.take().is_some(),
                    });
                }
                pattern => {
                    let argument = syn::Ident::new(
                        &format!("__ddspan_arg{index}"),
                        proc_macro2::Span::mixed_site(),
                    );
                    let renamed = syn::Pat::Ident(syn::PatIdent {
                        attrs: Vec::new(),
                        by_ref: None,
                        mutability: None,
                        ident: argument.clone(),
                        subpat: None,
                    });
                    let pattern = std::mem::replace(pattern, renamed);
                    moved.push(Moved::Pattern {
                        pattern: Box::new(pattern),
                        argument,
                    });
                }
            }
        }
        self.moved = moved;
    }
}

/// The declared return type and what it may be.
pub(crate) struct Output {
    /// The type for a `let` (and a closure's `->`): as written, each
    /// `impl Trait` in it as `_` (a `let` cannot name an opaque type, and
    /// `_` leaves it to inference while the rest, an `Err` type above all,
    /// stays known). `()` for no `->`; `None` when a type macro may hide an
    /// `impl Trait`.
    pub(crate) let_type: Option<TokenStream>,
    /// `-> !`.
    pub(crate) never: bool,
    /// It may be a `Result`: anything but the types that plainly are not,
    /// so aliases (`io::Result<T>`) still count. Where it cannot be one,
    /// the `Err` check is left out (compile time).
    pub(crate) may_be_result: bool,
    /// It is written as a `Result` (`Result<T, E>`, `io::Result<T>`): a `?`
    /// in the body then works on `Result`s, where an alias of another name
    /// may be an `Option`.
    pub(crate) spelled_result: bool,
}

impl Output {
    fn of(output: &ReturnType) -> Output {
        let ReturnType::Type(_, ty) = output else {
            return Output {
                let_type: Some(quote!(())),
                never: false,
                may_be_result: false,
                spelled_result: false,
            };
        };
        Output {
            let_type: let_type(ty).map(|ty| ty.into_token_stream()),
            never: matches!(**ty, Type::Never(_)),
            may_be_result: may_be_result(ty),
            spelled_result: spelled_result(ty),
        }
    }
}

/// `ty` with every `impl Trait` in it, however deep (`Result<(impl
/// Display, u8), E>`, `&(impl Display + ?Sized)`), as `_`; `None` when a
/// type macro's tokens (which cannot be looked into) hold an `impl`.
fn let_type(ty: &Type) -> Option<Type> {
    struct Infer {
        hidden: bool,
    }
    impl VisitMut for Infer {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            match ty {
                Type::ImplTrait(opaque) => {
                    let span = opaque.impl_token.span;
                    *ty = syn::parse_quote_spanned!(span=> _);
                }
                Type::Macro(mac) => self.hidden |= has_impl(mac.mac.tokens.clone()),
                _ => visit_mut::visit_type_mut(self, ty),
            }
            // `&(impl Display + ?Sized)` needs its parentheses, `&(_)` would
            // draw `unused_parens` on the user's tokens.
            if let Type::Paren(paren) = ty {
                if let Type::Infer(_) = *paren.elem {
                    *ty = (*paren.elem).clone();
                }
            }
        }
        // An item inside (`[u8; { fn f() -> impl Sized {} 1 }]`) has its own.
        fn visit_item_mut(&mut self, _: &mut syn::Item) {}
    }
    fn has_impl(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tree| match tree {
            TokenTree::Ident(word) => word == "impl",
            TokenTree::Group(group) => has_impl(group.stream()),
            _ => false,
        })
    }
    let mut ty = ty.clone();
    let mut infer = Infer { hidden: false };
    infer.visit_type_mut(&mut ty);
    (!infer.hidden).then_some(ty)
}

fn may_be_result(ty: &Type) -> bool {
    const NOT_RESULTS: &[&str] = &[
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
        "f32", "f64", "bool", "char", "str", "String", "Vec", "Option", "Box", "HashMap",
        "BTreeMap", "HashSet", "BTreeSet", "Cow",
    ];
    match ty {
        Type::Tuple(_)
        | Type::Never(_)
        | Type::ImplTrait(_)
        | Type::Array(_)
        | Type::Slice(_)
        | Type::Ptr(_) => false,
        Type::Reference(reference) => may_be_result(&reference.elem),
        Type::Paren(inner) => may_be_result(&inner.elem),
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_none_or(|last| !NOT_RESULTS.contains(&last.ident.to_string().as_str())),
        _ => true,
    }
}

/// `Result<..>`, `io::Result<..>`, `::std::io::Result<..>`; not an
/// associated type of that name (`Self::Result`, `T::Result`, told by the
/// case of what precedes it), which may be a `ControlFlow`.
fn spelled_result(ty: &Type) -> bool {
    let Type::Path(path) = ty else {
        return false;
    };
    let mut segments = path.path.segments.iter().rev();
    path.qself.is_none()
        && segments.next().is_some_and(|last| last.ident == "Result")
        && segments.next().is_none_or(|module| {
            let module = module.ident.to_string();
            module.starts_with(|c: char| c.is_lowercase() || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape as both readers see it, which must agree.
    fn shape(sig: &str) -> FnShape {
        let parsed = FnShape::of(&syn::parse_str(sig).unwrap());
        let trees: Vec<TokenTree> = format!("#[inline] pub(crate) {sig}")
            .parse::<TokenStream>()
            .unwrap()
            .into_iter()
            .collect();
        let read = FnShape::from_head(&trees).expect("read from tokens");
        let seen = |s: &FnShape| {
            let o = &s.output;
            let let_type = o.let_type.as_ref().map(ToString::to_string);
            let facts = (o.never, o.may_be_result, o.spelled_result);
            (
                s.name.clone(),
                s.constness.is_some(),
                s.is_async,
                s.is_main,
                let_type,
                facts,
            )
        };
        assert_eq!(seen(&read), seen(&parsed), "{sig}");
        parsed
    }

    #[test]
    fn other_items_are_not_read_as_functions() {
        for item in [
            "struct S",
            "impl S",
            "fn",
            "fn f",
            "fn f<T>",
            "fn f[]",
            "fn f() -> ",
        ] {
            let trees: Vec<TokenTree> = item.parse::<TokenStream>().unwrap().into_iter().collect();
            assert!(FnShape::from_head(&trees).is_none(), "{item}");
        }
    }

    #[test]
    fn signatures_are_read_once() {
        let s = shape("fn load<F: Fn() -> u8, 'a>(f: F) -> io::Result<u8> where F: Send");
        assert_eq!(s.name, "load");
        assert!(!s.is_async && s.constness.is_none() && !s.is_main);
        assert!(s.output.spelled_result && s.output.may_be_result);
        let s = shape("const unsafe extern \"C\" fn main()");
        assert!(s.constness.is_some() && s.is_main);
        assert_eq!(s.output.let_type.unwrap().to_string(), "()");
        let s = shape("async fn get(&self) -> Outcome<u8>");
        assert!(s.is_async && !s.output.spelled_result && s.output.may_be_result);
        assert!(shape("fn f() -> !").output.never);
        assert!(!shape("fn f() -> u8").output.may_be_result);
        for associated in ["Self::Result", "T::Result", "<T as V>::Result"] {
            let s = shape(&format!("fn visit(&self) -> {associated}"));
            assert!(!s.output.spelled_result, "{associated}");
        }
        for result in [
            "Result<u8, E>",
            "crate::Result<u8>",
            "::std::io::Result<u8>",
        ] {
            assert!(
                shape(&format!("fn f() -> {result}")).output.spelled_result,
                "{result}"
            );
        }
    }

    #[test]
    fn impl_trait_anywhere_in_the_return_type_is_left_to_inference() {
        let let_type = |ty: &str| {
            shape(&format!("fn f() -> {ty}"))
                .output
                .let_type
                .map(|t| t.to_string().replace(' ', ""))
        };
        for (ty, expected) in [
            ("impl Display", "_"),
            ("Result<impl Debug, E>", "Result<_,E>"),
            ("Result<(impl Display, u8), E>", "Result<(_,u8),E>"),
            ("Result<[impl Display; 2], E>", "Result<[_;2],E>"),
            (
                "Result<&'static (impl Display + ?Sized), E>",
                "Result<&'static_,E>",
            ),
            ("Option<Box<(u8, impl Fn() -> u8)>>", "Option<Box<(u8,_)>>"),
            (
                "Result<Box<dyn Fn() -> u8>, E>",
                "Result<Box<dynFn()->u8>,E>",
            ),
        ] {
            assert_eq!(let_type(ty).as_deref(), Some(expected), "{ty}");
        }
        assert_eq!(let_type("Result<my_type!(impl Sized), E>"), None);
        assert_eq!(
            let_type("Result<my_type!(u8), E>").as_deref(),
            Some("Result<my_type!(u8),E>")
        );
    }
}

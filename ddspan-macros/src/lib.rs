//! Procedural macros of [ddspan](https://docs.rs/ddspan): `#[dd_span]` and
//! `#[dd_ignore]`, the Rust counterpart of Orchestrion's `//dd:span` and
//! `//orchestrion:ignore` directives.
//!
//! Layout, in the order a function goes through:
//! - parse: `args.rs` reads the attribute's arguments, `expand.rs` the item
//!   (and dispatches: functions, `impl` blocks and modules in
//!   `container.rs`, annotated closures in `closure.rs`);
//! - model: `model.rs` validates the arguments into a span's settings,
//!   `shape.rs` reads the signature, `body.rs` the body and its exits;
//! - plan: `plan.rs` decides once how the function is instrumented;
//! - emit: `emit.rs` writes every generated token (its top shows the
//!   rewrite).
//!
//! Every error is a `syn::Error` on the user's tokens, all of them
//! reported at once, and the original item is still emitted.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use proc_macro::TokenStream;

mod args;
mod body;
mod closure;
mod container;
mod emit;
mod errors;
mod expand;
mod model;
mod plan;
mod shape;

/// Wraps a function, method, `impl` block or inline module in Datadog spans.
///
/// See the `ddspan` crate for the arguments and the rules. A crate that
/// renamed the dependency names it with `crate = path` (as serde's
/// `#[serde(crate = "...")]`; a string works too): every generated path
/// then starts with it instead of `::ddspan`, and the functions and
/// closures inside an annotated item inherit it.
#[proc_macro_attribute]
pub fn dd_span(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::dd_span(args.into(), item.into()).into()
}

/// Instruments a closure anywhere, also outside items that `#[dd_span]`
/// processes: `dd_closure!(key = "value", span.name = "op"; |x| x + 1)`.
/// Without `span.name` the closure is named after its first tag's value,
/// else `closure`. A crate that renamed ddspan passes `crate = path` here
/// too: a macro call does not see the attribute of the function it is in.
#[proc_macro]
pub fn dd_closure(input: TokenStream) -> TokenStream {
    closure::dd_closure(input.into()).into()
}

/// Opts an item or closure out of the instrumentation an enclosing
/// `#[dd_span]` would apply. On its own it does nothing.
#[proc_macro_attribute]
pub fn dd_ignore(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = proc_macro2::TokenStream::from(args);
    let item = proc_macro2::TokenStream::from(item);
    if args.is_empty() {
        return item.into();
    }
    let error = syn::Error::new_spanned(&args, "#[dd_ignore] takes no arguments");
    let error = error.to_compile_error();
    quote::quote!(#error #item).into()
}

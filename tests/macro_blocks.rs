//! `#[dd_span]` on `impl` blocks and inline modules: every function with a
//! body is instrumented with the block's tags; inner attributes extend or
//! override them; `#[dd_ignore]` opts an item out entirely.

mod support;

use ddspan::{dd_ignore, dd_span};
use support::agent::{flatten, meta, span_by_name};
use support::session::traced;

#[dd_span(layer = "service", team = "orders")]
mod orders {
    use super::{dd_ignore, dd_span};

    pub(crate) fn place(id: u32) -> u32 {
        let cart = super::orders::Cart { items: vec![id] };
        cart.total() + audit::record()
    }

    pub(crate) struct Cart {
        pub(crate) items: Vec<u32>,
    }

    #[dd_span(team = "cart", span.type = "custom")]
    impl Cart {
        pub(crate) fn total(&self) -> u32 {
            let doubled: Vec<u32> = self.items.iter().map(|x| x * 2).collect(); // not annotated
            doubled.iter().sum()
        }
    }

    pub(crate) mod audit {
        #[super::dd_span(span.name = "audit.write")]
        pub(crate) fn record() -> u32 {
            super::helper()
        }
    }

    #[dd_ignore]
    pub(crate) fn helper() -> u32 {
        1
    }

    pub(crate) trait Describe {
        fn describe(&self) -> String {
            "order".to_owned()
        }
    }

    impl Describe for Cart {}
}

#[test]
fn blocks_instrument_their_functions_with_inherited_tags() {
    use orders::Describe;
    let traced = traced();
    assert_eq!(orders::place(4), 9);
    assert_eq!(orders::Cart { items: vec![] }.describe(), "order");
    let spans = flatten(traced.collect(4));
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let place = span_by_name(&spans, "place");
    assert_eq!(meta(place, "layer"), Some("service"));
    assert_eq!(meta(place, "team"), Some("orders"));
    let total = span_by_name(&spans, "total");
    assert_eq!(meta(total, "layer"), Some("service"), "inherited");
    assert_eq!(meta(total, "team"), Some("cart"), "overridden");
    assert_eq!(total["type"], "custom");
    let audit = span_by_name(&spans, "audit.write");
    assert_eq!(meta(audit, "layer"), Some("service"));
    assert_eq!(meta(audit, "function-name"), Some("record"));
    span_by_name(&spans, "describe");
    assert!(spans.iter().all(|s| s["name"] != "helper"), "dd_ignore");
    traced.agent.assert_no_check_failures();
}

#[dd_ignore]
fn ignored_alone() -> u32 {
    7
}

#[test]
fn dd_ignore_alone_does_nothing() {
    assert_eq!(ignored_alone(), 7);
}

//! Property tests of the attribute parser, which has logic of its own
//! (dotted keys, signed literals, per-argument errors, duplicates): random
//! argument lists, valid and not, from a fixed-seed generator, so that every
//! run checks the same 20 000 cases.
//!
//! Properties: parsing never panics; what parses without error re-parses
//! from the arguments a block hands to its members (`inherited`) to the
//! same settings but for `span.name` and `child_of`; valid lists give
//! exactly the settings a model predicts.

use proc_macro2::TokenStream;
use quote::quote;

use super::{Settings, TagValue};
use crate::errors::Errors;

/// xorshift64*: a tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const KEYS: &[&str] = &[
    "a",
    "span",
    "name",
    "span.name",
    "resource.name",
    "service.name",
    "span.type",
    "http.route",
    "db.system",
    "type",
    "r#type",
    "r#fn",
    "self",
    "crate",
    "super",
    "Self",
    "_",
    "x1",
    "ключ",
    "child_of",
    "a.b.c.d",
    "a..b",
    ".a",
    "a.",
    "1a",
];
const OPS: &[&str] = &["=", "=", "=", "==", ":", "=>", ""];
const VALUES: &[&str] = &[
    "\"v\"",
    "\"\"",
    "\" \"",
    "\"a\\nb\"",
    "r\"raw\"",
    "r#\"x\"#",
    "1",
    "-1",
    "1.5",
    "-2.5e3",
    "1u8",
    "0x10",
    "1_000",
    "true",
    "false",
    "-true",
    "-\"s\"",
    "'c'",
    "b\"x\"",
    "some_fn()",
    "x",
    "[1]",
    "(1)",
    "{}",
    "-",
    "--1",
    "1 2",
    "\"a\" \"b\"",
    "&ctx",
    "headers.clone()",
];

fn random_args(rng: &mut Rng) -> String {
    let count = rng.below(5);
    let mut args = Vec::new();
    for _ in 0..count {
        let mut arg = String::new();
        if rng.below(10) > 0 {
            arg.push_str(rng.pick(KEYS));
        }
        if rng.below(10) > 0 {
            arg.push(' ');
            arg.push_str(rng.pick(OPS));
        }
        if rng.below(10) > 0 {
            arg.push(' ');
            arg.push_str(rng.pick(VALUES));
        }
        args.push(arg);
    }
    let mut text = args.join(if rng.below(20) == 0 { " " } else { ", " });
    if rng.below(5) == 0 {
        text.push(',');
    }
    text
}

fn parse(tokens: TokenStream) -> (Settings, Errors) {
    let mut errors = Errors::default();
    let settings = Settings::parse(tokens, &mut errors);
    (settings, errors)
}

/// What the settings say, as plain data.
fn summary(settings: &Settings) -> Vec<String> {
    let lit = |l: &Option<syn::LitStr>| l.as_ref().map(syn::LitStr::value);
    let krate = settings
        .krate
        .as_ref()
        .map(|path| quote!(#path).to_string());
    let mut out = vec![
        format!("name={:?}", lit(&settings.name)),
        format!("resource={:?}", lit(&settings.resource)),
        format!("service={:?}", lit(&settings.service)),
        format!("type={:?}", lit(&settings.span_type)),
        format!("child_of={}", settings.child_of.is_some()),
        format!("ignore_errors={}", settings.ignore_errors),
        format!("crate={krate:?}"),
    ];
    for tag in &settings.tags {
        let key = &tag.key;
        out.push(match &tag.value {
            TagValue::Str(s) => format!("{key}=str:{s}"),
            TagValue::Number(value) => format!("{key}=num:{value}"),
            TagValue::Dynamic { format, expr } => {
                format!("{key}=dyn:{}", quote!(#format #expr))
            }
        });
    }
    out
}

#[test]
fn random_arguments_never_panic_and_round_trip() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut clean, mut rejected) = (0, 0);
    for _ in 0..20_000 {
        let text = random_args(&mut rng);
        let Ok(tokens) = text.parse::<TokenStream>() else {
            continue; // not even Rust tokens: rustc reports it
        };
        let outcome = std::panic::catch_unwind(|| {
            let (settings, errors) = parse(tokens);
            if !errors.is_empty() {
                assert!(!errors.into_compile_errors().is_empty());
                return false;
            }
            let inherited = &settings.inherited;
            let again = quote!(#(#inherited),*);
            let (reparsed, errors) = parse(again.clone());
            assert!(
                errors.is_empty(),
                "`{text}` handed on `{again}`, which does not parse"
            );
            let mut expected = settings.clone();
            expected.name = None;
            expected.child_of = None;
            expected.tags.retain(|tag| !tag.value.is_dynamic());
            assert_eq!(summary(&reparsed), summary(&expected), "`{text}`");
            true
        });
        match outcome {
            Ok(true) => clean += 1,
            Ok(false) => rejected += 1,
            Err(_) => panic!("the parser panicked on `#[dd_span({text})]`"),
        }
    }
    // The generator must exercise both sides.
    assert!(
        clean > 1_000 && rejected > 1_000,
        "{clean} clean, {rejected} rejected"
    );
}

#[test]
fn valid_arguments_give_the_settings_a_model_predicts() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let keys = [
        "span.name",
        "resource.name",
        "service.name",
        "span.type",
        "a",
        "http.route",
        "r#type",
        "db.rows",
        "x.y.z",
    ];
    for _ in 0..5_000 {
        let mut used: Vec<&str> = Vec::new();
        let mut text = Vec::new();
        let mut model: Vec<(String, String)> = Vec::new();
        for _ in 0..rng.below(6) {
            let key = keys[rng.below(keys.len())];
            if used.contains(&key) {
                continue;
            }
            used.push(key);
            let plain_key = key.trim_start_matches("r#").to_owned();
            let special = key.contains("name") && key != "http.route" || key == "span.type";
            let (value, expected) = match (special, rng.below(3)) {
                (false, 1) => {
                    let n = rng.below(2000) as i64 - 1000;
                    (n.to_string(), format!("num:{}", n as f64))
                }
                (false, 2) => ("true".to_owned(), "num:1".to_owned()),
                _ => {
                    let s = format!("v{}", rng.below(100));
                    (format!("\"{s}\""), format!("str:{s}"))
                }
            };
            text.push(format!("{key} = {value}"));
            model.push((plain_key, expected));
        }
        let text = text.join(", ");
        let (settings, errors) = parse(text.parse().unwrap());
        assert!(errors.is_empty(), "`{text}` was rejected");
        let field = |key: &str| {
            model
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.trim_start_matches("str:").to_owned())
        };
        let lit = |l: &Option<syn::LitStr>| l.as_ref().map(syn::LitStr::value);
        assert_eq!(lit(&settings.name), field("span.name"), "`{text}`");
        assert_eq!(lit(&settings.resource), field("resource.name"));
        assert_eq!(lit(&settings.service), field("service.name"));
        assert_eq!(lit(&settings.span_type), field("span.type"));
        let tags: Vec<String> = summary(&settings)[7..].to_vec();
        let expected: Vec<String> = model
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "span.name" | "resource.name" | "service.name" | "span.type"
                )
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(tags, expected, "`{text}`");
    }
}

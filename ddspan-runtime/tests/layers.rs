//! The runtime's folders follow the life of a span, and imports run one way
//! along it: a module may use the folders below its own in [`LAYERS`], never
//! those above. This test reads the sources and lists every use against
//! that direction (tests inside a file are exempt: they may build anything).

use std::path::{Path, PathBuf};

/// Top to bottom. The integrations and the public `tracer` functions use
/// everything below them; `util` uses nothing of ours.
const LAYERS: &[&str] = &[
    "integrations",
    "tracer",
    "span",
    "propagation",
    "context",
    "trace",
    "runtime",
    "export",
    "sampling",
    "record",
    "config",
    "util",
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| *layer == module)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the runtime's sources") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` items.
fn production_code(text: &str) -> String {
    let mut code = String::new();
    let mut skipping_test_item = false;
    let mut depth = 0i32;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if !skipping_test_item && trimmed.starts_with("#[cfg(test)]") {
            skipping_test_item = true;
            depth = 0;
            continue;
        }
        if skipping_test_item {
            depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
            // A one-line item (`#[cfg(test)] use ...;`) or the closing brace.
            if depth <= 0 && (line.contains('}') || trimmed.ends_with(';')) {
                skipping_test_item = false;
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// The first segment of every `crate::` path in `code`, also inside a
/// `crate::{a, b::c}` group.
fn used_modules(code: &str) -> Vec<String> {
    let name = |text: &str| -> String {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut used = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let mut depth = 0;
                let mut start = 0;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            used.push(name(&group[start..i]));
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            used.push(name(&group[start..i]));
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
            }
            None => used.push(name(rest)),
        }
    }
    used
}

#[test]
fn the_checker_reads_grouped_paths() {
    assert_eq!(
        used_modules("use crate::{span::Span, trace::{A, B}};\nlet x = crate::util::id::new();"),
        ["span", "trace", "util"]
    );
}

#[test]
fn imports_run_down_the_life_of_a_span() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut against = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under src");
        let first = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default()
            .trim_end_matches(".rs")
            .to_owned();
        let Some(own) = rank(&first) else {
            continue; // lib.rs: the crate's surface re-exports every layer
        };
        let code = production_code(&std::fs::read_to_string(file).expect("readable"));
        for used in used_modules(&code) {
            if rank(&used).is_some_and(|used_rank| used_rank < own) {
                against.push(format!("{} uses crate::{used}", relative.display()));
            }
        }
    }
    against.sort();
    against.dedup();
    assert!(
        against.is_empty(),
        "imports against the layer order {LAYERS:?}:\n{}",
        against.join("\n")
    );
}

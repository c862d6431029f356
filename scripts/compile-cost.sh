#!/usr/bin/env bash
# Compile cost of instrumentation: builds 200 annotated functions (half
# returning Result through ?, half plain) with
# #[ddspan::dd_span], #[tracing::instrument] and #[fastrace::trace], and the
# same 200 functions plain, and reports the extra milliseconds per function
# (best of 5 rebuilds of the one crate, dependencies prebuilt).
#
#   bash scripts/compile-cost.sh            # debug builds (what a developer waits for)
#   PROFILE=release bash scripts/compile-cost.sh
#   KIND=plain|fallible bash scripts/compile-cost.sh   # one kind of function only (default: mixed)
#
# The crates are built in $TMPDIR/ddspan-compile-cost (recreated each run)
# into $CARGO_TARGET_DIR when it is set (dependencies then stay built from
# one run to the next), else into a target directory inside it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${TMPDIR:-/tmp}/ddspan-compile-cost"
functions=200
profile="${PROFILE:-dev}"
rm -rf "$work" && mkdir -p "$work"

cat > "$work/Cargo.toml" <<TOML
[workspace]
members = ["plain", "ddspan_fns", "tracing_fns", "fastrace_fns"]
resolver = "2"
TOML

make_crate() { # name, dependency line, attribute, import
  mkdir -p "$work/$1/src"
  cat > "$work/$1/Cargo.toml" <<TOML
[package]
name = "$1"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$2
TOML
  {
    echo "#![allow(dead_code)]"
    echo "$4"
    # Half fallible functions (Result and ?), half plain ones.
    for i in $(seq 1 "$functions"); do
      echo "$3"
      if [ "${KIND:-mixed}" = fallible ] || { [ "${KIND:-mixed}" = mixed ] && [ $((i % 2)) -eq 0 ]; }; then
        echo "pub fn work_$i(a: u64, b: &str) -> Result<u64, std::num::ParseIntError> {"
        echo "    let parsed: u64 = b.parse()?;"
        echo "    Ok(a + parsed + $i)"
      else
        echo "pub fn work_$i(a: u64, b: &str) -> u64 {"
        echo "    a + b.len() as u64 + $i"
      fi
      echo "}"
    done
  } > "$work/$1/src/lib.rs"
}

make_crate plain "" "" ""
make_crate ddspan_fns "ddspan = { path = \"$root\" }" "#[dd_span(component = \"bench\")]" "use ddspan::dd_span;"
make_crate tracing_fns 'tracing = "0.1"' "#[tracing::instrument(skip_all, fields(component = \"bench\"))]" ""
make_crate fastrace_fns 'fastrace = { version = "0.7", features = ["enable"] }' "#[fastrace::trace]" ""

cd "$work"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$work/target}"
echo "kind ${KIND:-mixed}, $functions functions, profile $profile"
# Full rebuilds of the one crate: incremental reuse would hide the cost.
export CARGO_INCREMENTAL=0
cargo build --quiet --profile "$profile" --workspace

best_ms() { # crate
  local best=""
  for _ in 1 2 3 4 5; do
    touch "$1/src/lib.rs"
    local start end ms
    start=$(date +%s%N)
    cargo build --quiet --profile "$profile" -p "$1"
    end=$(date +%s%N)
    ms=$(( (end - start) / 1000000 ))
    if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
  done
  echo "$best"
}

plain=$(best_ms plain)
printf '%-12s %8s %12s\n' "crate" "build ms" "ms/function"
printf '%-12s %8d %12s\n' "plain" "$plain" "-"
for crate in ddspan_fns tracing_fns fastrace_fns; do
  ms=$(best_ms "$crate")
  per=$(awk -v a="$ms" -v b="$plain" -v n="$functions" 'BEGIN { printf "%.2f", (a - b) / n }')
  printf '%-12s %8d %12s\n' "${crate%_fns}" "$ms" "$per"
done

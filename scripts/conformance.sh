#!/usr/bin/env bash
# Datadog's parametric conformance tests against ddspan's parametric server
# (examples/parametric). A developer tool, not part of `cargo test`: it
# needs a system-tests export and a runner that plays system-tests' Docker
# fixtures with local processes; neither is in this repository.
#
# usage: scripts/conformance.sh RUNNER SYSTEM_TESTS [pytest args...]
#
#   RUNNER        a run-parametric.sh: starts ddapm-test-agent and the app
#                 per test, with the harness's environment, and runs pytest
#                 (its --help lists the options)
#   SYSTEM_TESTS  an export of github.com/DataDog/system-tests, e.g.
#                 git --git-dir=<clone>/.git archive HEAD | tar -x -C /tmp/system-tests
#   pytest args   test files (relative to SYSTEM_TESTS), -k, -x, -v, ...;
#                 default: the 16 Datadog-API files CONFORMANCE.md reports
#
# Environment: LOG_DIR (default: SYSTEM_TESTS/../parametric-logs); per-test
# logs land in LOG_DIR/outputs/<Class>/<test>/. It builds the server in
# release mode, then runs every test regardless of system-tests' Rust
# manifest (which describes Datadog's own Rust tracer, not ddspan).
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,21p' "$0" >&2
    exit 2
fi
RUNNER="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
ST="$(cd "$2" && pwd)"
shift 2
[[ -f "${RUNNER}" ]] || { echo "conformance.sh: no runner at ${RUNNER}" >&2; exit 2; }
[[ -d "${ST}/tests/parametric" ]] || { echo "conformance.sh: no system-tests at ${ST}" >&2; exit 2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
cargo build --release -p ddspan-parametric
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
APP="${TARGET_DIR}/release/parametric"

TESTS=("$@")
if [[ ${#TESTS[@]} -eq 0 ]]; then
    for f in span_sampling trace_sampling headers_datadog headers_tracecontext headers_baggage \
        headers_b3 headers_b3multi headers_none headers_opm headers_precedence \
        headers_tracestate_dd tracer span_links library_tracestats 128_bit_traceids \
        config_consistency; do
        TESTS+=("tests/parametric/test_${f}.py")
    done
fi

exec bash "${RUNNER}" --system-tests "${ST}" --lang rust --ignore-manifest \
    --app-cmd "$(printf %q "${APP}")" --log-dir "${LOG_DIR:-${ST}/../parametric-logs}" "${TESTS[@]}"

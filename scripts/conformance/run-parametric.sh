#!/usr/bin/env bash
# Local stand-in for run-parametric.sh (same arguments, subset): session tool, not project code.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${PARAMETRIC_VENV:-/tmp/st-venv}"
ST=""; LANG_NAME=""; APP_CMD=""; IGNORE=0; LOG_DIR=""; TIMEOUT=300; ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --system-tests) ST="$2"; shift 2;; --lang) LANG_NAME="$2"; shift 2;;
    --app-cmd) APP_CMD="$2"; shift 2;; --ignore-manifest) IGNORE=1; shift;;
    --log-dir) LOG_DIR="$2"; shift 2;; --test-timeout) TIMEOUT="$2"; shift 2;;
    *) ARGS+=("$1"); shift;;
  esac
done
cd "$ST" || exit 2
LOG_DIR="$ST/logs_parametric"  # fixed by system-tests (--log-dir ignored)
start=$(date +%s)
PYTHONPATH="$HERE" PARAMETRIC_AGENT_BIN="$VENV/bin/ddapm-test-agent" PARAMETRIC_IGNORE_MANIFEST=$IGNORE \
PARAMETRIC_APP_CMD="$APP_CMD" "$VENV/bin/python" -m pytest -p parametric_local -S PARAMETRIC -L "$LANG_NAME" \
  -p no:cacheprovider -p no:warnings --timeout="$TIMEOUT" -q "${ARGS[@]}"
rc=$?
"$VENV/bin/python" - "$LOG_DIR/report.json" "$(( $(date +%s) - start ))" <<'PY'
import collections, json, sys
report = json.load(open(sys.argv[1]))
kinds = ["passed", "failed", "error", "skipped", "xfailed", "xpassed"]
per_file = collections.OrderedDict()
for t in report.get("tests", []):
    per_file.setdefault(t["nodeid"].split("::", 1)[0], collections.Counter())[t["outcome"]] += 1
total = collections.Counter(); w = max([len(f) for f in per_file] + [5])
print(f"\n{'file':<{w}} " + " ".join(f"{k:>7}" for k in kinds))
for f, c in per_file.items():
    total.update(c); print(f"{f:<{w}} " + " ".join(f"{c.get(k, 0):>7}" for k in kinds))
print(f"{'TOTAL':<{w}} " + " ".join(f"{total.get(k, 0):>7}" for k in kinds))
print(f"duration: {sys.argv[2]}s")
print(f"{total['passed']} passed, {total['failed'] + total['error']} failed")
PY
exit $rc

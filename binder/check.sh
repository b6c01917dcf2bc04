#!/usr/bin/env bash
# Build a fresh environment the way Binder does -- binder/requirements.txt, then binder/postBuild
# from the repository root -- and run the tutorial notebooks in it with nbval.
#
#   binder/check.sh            # in a new temporary directory, removed afterwards
#   binder/check.sh DIR        # keep the environment in DIR (re-used if it already exists)
#
# Needs python3.11 (or python3) and access to the package index. Prints how long each stage took.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -ge 1 ]]; then
    WORK="$1"
    mkdir -p "$WORK"
else
    WORK="$(mktemp -d -t agentgraph-binder-XXXXXX)"
    trap 'rm -rf "$WORK"' EXIT
fi
PY="$(command -v python3.11 || command -v python3)"
SECONDS=0
stage() { printf '[binder/check.sh] %-34s %4ds\n' "$1" "$SECONDS"; }

if [[ ! -x "$WORK/venv/bin/python" ]]; then
    "$PY" -m venv "$WORK/venv"
fi
# shellcheck disable=SC1091
source "$WORK/venv/bin/activate"
# Binder gets its own Jupyter directories; so do we, or the user's settings would leak in.
export JUPYTER_CONFIG_DIR="$WORK/jupyter/config" JUPYTER_DATA_DIR="$WORK/jupyter/data"
export JUPYTER_RUNTIME_DIR="$WORK/jupyter/runtime" IPYTHONDIR="$WORK/ipython"
python -m pip install --quiet --upgrade pip
stage "venv ready"

python -m pip install --quiet -r "$ROOT/binder/requirements.txt"
stage "binder/requirements.txt installed"

(cd "$ROOT" && bash binder/postBuild >/dev/null)
stage "binder/postBuild done"

# Test tools only (not part of the Binder image); a config of our own, so the project's pytest
# settings (which need the dev extras' plugins) stay out of it.
python -m pip install --quiet pytest nbval
printf '[pytest]\n' > "$WORK/pytest.ini"
cd "$ROOT"
python -m pytest -c "$WORK/pytest.ini" --rootdir "$ROOT" -p no:cacheprovider -q \
    --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg notebooks/
stage "notebooks passed (nbval)"

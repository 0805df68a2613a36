#!/usr/bin/env bash
# lle launcher: creates .venv and installs lle on first use (and again whenever pyproject.toml changes),
# then runs a subcommand.
#
#   ./launch.sh train ARGS...    python -m lle.main ARGS  (e.g. --config=configs/itmn.py:demo --workdir=runs/x)
#   ./launch.sh eval ARGS...     python -m lle.main --mode=eval ARGS
#   ./launch.sh summary ARGS...  python -m lle.main --mode=summary ARGS
#   ./launch.sh test [ARGS...]   pytest (ARGS go to pytest, e.g. -m "not slow")
#   ./launch.sh sweep FILE.yaml --workdir=DIR [--config...=...]   a W&B sweep file, run locally (no server)
#   ./launch.sh agent SWEEP_ID   a W&B agent for a sweep made by `wandb sweep FILE.yaml` (needs a W&B server)
#   ./launch.sh report DIR --out=OUT   the papers' tables from run folders
#   ./launch.sh bench [ARGS...]  the training benchmark table
#   ./launch.sh python ARGS...   the venv's python
#
# Environment: LLE_PYTHON (interpreter for the venv, default python3.11 or python3), LLE_EXTRAS
# (pip extras, default "test"; "test,cuda" on NVIDIA GPU machines), LLE_VENV (default .venv).
set -euo pipefail
cd "$(dirname "$0")"

venv="${LLE_VENV:-.venv}"
extras="${LLE_EXTRAS:-test}"
python="${LLE_PYTHON:-$(command -v python3.11 || command -v python3)}"
stamp="$( (cat pyproject.toml; echo "$extras") | sha256sum | cut -d' ' -f1)"

if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.lle-deps" 2>/dev/null)" != "$stamp" ]]; then
  echo "launch.sh: installing lle[$extras] into $venv ..." >&2
  [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
  echo "$stamp" > "$venv/.lle-deps"
fi

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  train) exec "$venv/bin/python" -m lle.main "$@" ;;
  eval) exec "$venv/bin/python" -m lle.main --mode=eval "$@" ;;
  summary) exec "$venv/bin/python" -m lle.main --mode=summary "$@" ;;
  test) exec "$venv/bin/python" -m pytest "$@" ;;
  sweep) exec "$venv/bin/python" -m lle.sweep "$@" ;;
  agent) exec "$venv/bin/wandb" agent "$@" ;;
  report) exec "$venv/bin/python" -m lle.report "$@" ;;
  bench) exec "$venv/bin/python" benchmarks/bench_train.py "$@" ;;
  python) exec "$venv/bin/python" "$@" ;;
  *) sed -n '2,18p' "$0" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# lle launcher: creates .venv and installs lle on first use (and again whenever pyproject.toml changes),
# then runs a subcommand.
#
#   ./launch.sh train ARGS...    python -m lle.main ARGS  (e.g. --config=configs/itmn.py:demo --workdir=runs/x)
#   ./launch.sh eval ARGS...     python -m lle.main --mode=eval ARGS
#   ./launch.sh summary ARGS...  python -m lle.main --mode=summary ARGS
#   ./launch.sh enhance ARGS...  python -m lle.enhance ARGS  (--input=FILE_OR_DIR --output=DIR: your photos)
#   ./launch.sh test [ARGS...]   pytest (ARGS go to pytest, e.g. -m "not slow")
#   ./launch.sh sweep FILE.yaml --workdir=DIR [--config...=...]   a W&B sweep file, run locally (no server)
#   ./launch.sh agent SWEEP_ID   a W&B agent for a sweep made by `wandb sweep FILE.yaml` (needs a W&B server)
#   ./launch.sh report DIR --out=OUT   the papers' tables from run folders
#   ./launch.sh bench [ARGS...]  the training benchmark table
#   ./launch.sh python ARGS...   the venv's python
#   ./launch.sh slurm train|sweep|agent ARGS...   inside an sbatch job (see README, "Clusters"):
#       train: one process per node via srun (jax.distributed reads SLURM's variables), requeued on
#              preemption (exit code 75); sweep: this array task's shard of a local sweep;
#       agent: one W&B agent run per array task
#
# Commands run in the folder they are started from, so relative paths (--input, --output, --workdir,
# --manual_dir, --from, ...) are the caller's; `--config=configs/x.py` finds lle's own config from any
# folder, and `python benchmarks/x.py` lle's own script. `test` runs in the repository.
#
# Environment: LLE_PYTHON (interpreter for the venv, default python3.11 or python3), LLE_EXTRAS
# (pip extras, default "test"; "test,cuda" on NVIDIA GPU machines), LLE_VENV (default .venv, in the
# repository), LLE_XLA_DEFAULTS (0: do not add lle's XLA CPU flag below), LLE_COMPILATION_CACHE (see
# README), LLE_TRACEBACK (1: a traceback instead of the one-line `error:` for a mistake in the input).
set -euo pipefail
# sbatch runs a copy of this script from its spool folder: then the repository is where the job was submitted.
if [[ -n "${SLURM_JOB_ID:-}" && ! -f "$(dirname "$0")/pyproject.toml" ]]; then
  repo="$(cd "${SLURM_SUBMIT_DIR:?}" && pwd)"
else
  repo="$(cd "$(dirname "$0")" && pwd)"
fi

venv="${LLE_VENV:-.venv}"
[[ "$venv" == /* ]] || venv="$repo/$venv"
extras="${LLE_EXTRAS:-test}"
python="${LLE_PYTHON:-$(command -v python3.11 || command -v python3)}"
stamp="$( (cat "$repo/pyproject.toml"; echo "$extras") | sha256sum | cut -d' ' -f1)"

if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.lle-deps" 2>/dev/null)" != "$stamp" ]]; then
  echo "launch.sh: installing lle[$extras] into $venv ..." >&2
  [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
  (cd "$repo" && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$extras]")
  echo "$stamp" > "$venv/.lle-deps"
fi
# `python -m lle...` from the caller's folder: that folder is not put first on the module path, so that
# an `lle` folder there (another checkout) cannot stand in for this one.
export PYTHONSAFEPATH=1

cmd="${1:-}"
[[ $# -gt 0 ]] && shift

# XLA CPU: YNNPACK fusions of individual dots sped up every method's demo train step on a 2-core x86 CPU
# (images/s: itmn 54 -> 58, gladnet 29 -> 41, neid 44 -> 87, tmgan 11 -> 25, iqe 34 -> 45;
# benchmarks/bench_train.py). It only affects the CPU backend. LLE_XLA_DEFAULTS=0 leaves XLA_FLAGS alone;
# the tests run without it (their reference tolerances were set on XLA's defaults).
if [[ "${LLE_XLA_DEFAULTS:-1}" != 0 && "$cmd" != test && "${XLA_FLAGS:-}" != *ynn_fusion_type* ]]; then
  export XLA_FLAGS="${XLA_FLAGS:-} --xla_cpu_experimental_ynn_fusion_type=individual_dot"
fi
# A W&B agent starts each run as `/usr/bin/env python -m lle.main ...`: the venv's python must be the
# `python` on PATH. Its stdin is not a terminal, so wandb stops on a missing API key instead of prompting.
wandb_agent() { PATH="$(cd "$venv/bin" && pwd):$PATH" exec "$venv/bin/wandb" agent "$@" < /dev/null; }
case "$cmd" in
  train) exec "$venv/bin/python" -m lle.main "$@" ;;
  eval) exec "$venv/bin/python" -m lle.main --mode=eval "$@" ;;
  summary) exec "$venv/bin/python" -m lle.main --mode=summary "$@" ;;
  enhance) exec "$venv/bin/python" -m lle.enhance "$@" ;;
  test) cd "$repo" && PYTHONSAFEPATH= exec "$venv/bin/python" -m pytest "$@" ;;
  sweep) exec "$venv/bin/python" -m lle.sweep "$@" ;;
  agent) wandb_agent "$@" ;;
  report) exec "$venv/bin/python" -m lle.report "$@" ;;
  bench) PYTHONSAFEPATH= exec "$venv/bin/python" "$repo/benchmarks/bench_train.py" "$@" ;;
  python)
    # A script named relative to the repository (benchmarks/x.py) runs from any folder; a script runs with
    # its own folder on the module path (PYTHONSAFEPATH is for `-m`).
    if [[ $# -gt 0 && "$1" != -* && "$1" != /* && ! -e "$1" && -e "$repo/$1" ]]; then
      set -- "$repo/$1" "${@:2}"
    fi
    PYTHONSAFEPATH= exec "$venv/bin/python" "$@" ;;
  slurm)
    : "${SLURM_JOB_ID:?launch.sh slurm runs inside an sbatch job, e.g. sbatch --nodes=2 launch.sh slurm train ...}"
    sub="${1:-}"
    [[ $# -gt 0 ]] && shift
    case "$sub" in
      train)
        # One task per node; each runs every local accelerator. The batch shell keeps waiting when the
        # job is signalled (SLURM signals the run too), so that it can requeue a preempted run.
        srun --ntasks-per-node=1 --kill-on-bad-exit=1 "$repo/launch.sh" train --distributed "$@" &
        pid=$!
        trap 'echo "launch.sh: stop signal; waiting for the run to save its checkpoint" >&2' TERM USR1
        code=0
        while true; do
          wait "$pid" && code=0 || code=$?
          kill -0 "$pid" 2>/dev/null || break
        done
        if [[ $code -eq 75 ]]; then
          echo "launch.sh: run preempted; requeueing job $SLURM_JOB_ID" >&2
          scontrol requeue "$SLURM_JOB_ID"
        fi
        exit "$code" ;;
      sweep)
        exec "$venv/bin/python" -m lle.sweep "$@" --shard="${SLURM_ARRAY_TASK_ID:-0}" \
          --num_shards="${SLURM_ARRAY_TASK_COUNT:-1}" ;;
      agent) wandb_agent --count=1 "$@" ;;
      *) echo "usage: launch.sh slurm train|sweep|agent ARGS..." >&2; exit 2 ;;
    esac ;;
  *) sed -n '2,27p' "$0" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Pixel Reasoner RL in CPU mode on a tiny random model: FOR DEBUGGING AND CI ONLY, never for training.
#
# Prepares the inputs under $WORK (a tiny random Qwen2.5-VL, toy prompts, the agent's settings for it with forced
# turns: a random model never calls a tool on its own; see openrlhf_ext/cpu_demo.py), then runs
# recipes/rl_tiny_cpu.yaml with their paths: 4 rollout steps, about 3.5 minutes and ~9 GiB on 2 cores.
#
#   bash recipes/rl_tiny_cpu.sh                      # prepare inputs under $WORK, then train 4 steps
#   DRY_RUN=1 bash recipes/rl_tiny_cpu.sh            # validate and print the resolved configuration only
#   bash recipes/rl_tiny_cpu.sh --pr.ssr.stale_logprobs recompute   # extra flags override the recipe
#
# Environment: WORK (output dir), PYTHON, MODEL (a warm-start checkpoint to train, e.g. the quickstart's SFT
# output; default the tiny random model), MIXED_QUERIES, UNIFORM_QUERIES, MODEL_CACHE, SYNC_DUMP (weight-sync
# evidence directory), DRY_RUN. The launcher needs an OpenRLHF patched with our hooks (scripts/install.sh applies
# the patch; where the venv must not change, put `python -m openrlhf_ext.upstream_patch copy --to DIR`'s directory
# first on PYTHONPATH).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python
WORK="${WORK:-$REPO/out/rl_tiny_cpu}"
MODEL_CACHE="${MODEL_CACHE:-$REPO/.cache/tiny_models}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

mkdir -p "$WORK"
"$PYTHON" -m openrlhf_ext.cpu_demo prepare --out "$WORK/inputs" --model-cache "$MODEL_CACHE" \
  --mixed-queries "${MIXED_QUERIES:-3}" --uniform-queries "${UNIFORM_QUERIES:-1}" > "$WORK/inputs.log"
MODEL="${MODEL:-$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"])' "$WORK/inputs/inputs.json")}"

source "$REPO/recipes/cpu_rl_launch.sh"
launch_cpu_rl "$REPO/recipes/rl_tiny_cpu.yaml" "$@"

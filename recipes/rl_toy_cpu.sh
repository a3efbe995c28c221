#!/usr/bin/env bash
# Pixel Reasoner RL in CPU mode from a zoom-task SFT checkpoint, with NO forced turns (docs/rl.md, "Toy RL").
#
# Writes zoom-task prompts (split `train`, detail and coarse questions) and the agent's settings for the task under
# $WORK (python -m openrlhf_ext.zoom_prompts prepare), then runs recipes/rl_toy_cpu.yaml on MODEL: STEPS rollout
# steps of QUERIES prompts x GROUP samples, one policy update each, and saves the final model in $WORK/ckpt, which
# `python -m eval run --model $WORK/ckpt $(python -m pixel_reasoner.zoom_task eval-flags) ...` evaluates.
#
#   MODEL=out/zoom/sft bash recipes/rl_toy_cpu.sh                 # 4 steps of 4 queries x 4 samples
#   MODEL=out/zoom/sft STEPS=20 GROUP=8 bash recipes/rl_toy_cpu.sh
#   MODEL=out/zoom/sft DRY_RUN=1 bash recipes/rl_toy_cpu.sh       # validate and print the resolved configuration
#   MODEL=out/zoom/sft bash recipes/rl_toy_cpu.sh --pr.rewards.settings '{curiosity: {weight: 0}}'  # extra flags override
#
# Environment: MODEL (required: a zoom-task SFT checkpoint), WORK (output dir), PYTHON, STEPS, QUERIES (prompts per
# step), GROUP (samples per prompt), TASK_SEED (0: the SFT data's), SYNC_DUMP (weight-sync evidence directory),
# DRY_RUN. The launcher needs an OpenRLHF patched with our hooks (scripts/install.sh applies the patch).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python
WORK="${WORK:-$REPO/out/rl_toy_cpu}"
STEPS="${STEPS:-4}" QUERIES="${QUERIES:-4}" GROUP="${GROUP:-4}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

if [ -z "${MODEL:-}" ] || [ ! -f "$MODEL/config.json" ]; then
  cat >&2 <<MSG
rl_toy_cpu.sh: MODEL must name a zoom-task SFT checkpoint (a directory with config.json); got '${MODEL:-}'.
Make one (docs/learning.md; ~200 steps make the model follow the protocol by itself):
  $PYTHON -m pixel_reasoner.testing.tiny_qwen out/zoom/model --preset zoom
  $PYTHON -m pixel_reasoner.zoom_task seeds out/zoom/seeds --n 600 --seed 0
  $PYTHON -m data_synthesis run --config recipes/synth_zoom_cpu.yaml --set profile=qwen \\
      --set "sources=[{format: jsonl, name: zoom, path: 'out/zoom/seeds/seeds.jsonl'}]" --output.dir out/zoom/synthesis --no-progress
  $PYTHON -m accelerate.commands.launch --config_file recipes/accelerate/cpu.yaml --num_cpu_threads_per_process 1 \\
      open_r1_ext/sft.py --config recipes/sft_zoom_cpu.yaml --model_name_or_path out/zoom/model \\
      --data_files out/zoom/synthesis/trajectories.jsonl --data_weights 1 --output_dir out/zoom/sft --max_steps 200
then: MODEL=out/zoom/sft bash recipes/rl_toy_cpu.sh
MSG
  exit 2
fi
MODEL="$(cd "$MODEL" && pwd)"  # Ray's workers do not start in this directory

mkdir -p "$WORK"
"$PYTHON" -m openrlhf_ext.zoom_prompts prepare --out "$WORK/inputs" --n "$((STEPS * QUERIES))" \
  --seed "${TASK_SEED:-0}" > "$WORK/inputs.log"

source "$REPO/recipes/cpu_rl_launch.sh"
launch_cpu_rl "$REPO/recipes/rl_toy_cpu.yaml" \
  --rollout.n_samples_per_prompt "$GROUP" --rollout.batch_size "$QUERIES" --train.batch_size "$((QUERIES * GROUP))" \
  "$@"

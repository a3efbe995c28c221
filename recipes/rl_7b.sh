#!/usr/bin/env bash
# Pixel Reasoner phase 2 (RL) on Qwen2.5-VL-7B: launches recipes/rl_7b.yaml (every setting is there) on this cluster.
#
# Submit to a running Ray cluster (the repository at the same path on every node, its venv activated there):
#   ray job submit --address http://HEAD:8265 -- bash /path/to/pixel-reasoner/recipes/rl_7b.sh
# or run on the head node directly:  bash recipes/rl_7b.sh
# Print the resolved command and configuration without a GPU (nothing starts):
#   DRY_RUN=1 bash recipes/rl_7b.sh
# Change a setting with its flag after the script name, e.g. `bash recipes/rl_7b.sh --actor.adam.lr 2e-6
# --pr.ssr.stale_logprobs recompute` (`python -m openrlhf_ext.train --help` lists upstream's and ours), or edit the
# recipe. The launcher is upstream's train_ppo_ray with our hooks: scripts/install.sh patches the installed OpenRLHF
# (or `python -m patches apply --target <site-packages>`); it refuses to start on an unpatched one.
#
# This script passes only what the recipe cannot know:
#   the cluster layout     NNODES (1), GPUS_PER_NODE (8), COLOCATE (0: half the GPUs train, half generate;
#                          1: actor and vLLM share every GPU, sleep mode); the paper: 4 nodes x 8 A800-80GB, ~20 h
#   where things are       MODEL, DATA, EVAL_DATA, OUT (each only when set), RECIPE (default recipes/rl_7b.yaml)
#   logging                WANDB_API_KEY, RUN_NAME; DRY_RUN=1
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
RECIPE="${RECIPE:-$REPO/recipes/rl_7b.yaml}"

NNODES="${NNODES:-1}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
TOTAL_GPUS=$(( NNODES * GPUS_PER_NODE ))
if [ "${COLOCATE:-0}" = "1" ]; then
  ACTOR_NUM_NODES="$NNODES"; ACTOR_GPUS_PER_NODE="$GPUS_PER_NODE"; VLLM_NUM_ENGINES="$TOTAL_GPUS"
  LAYOUT=(--train.colocate_all --vllm.enable_sleep --ds.enable_sleep)
elif [ "$NNODES" -gt 1 ]; then
  ACTOR_NUM_NODES=$(( NNODES / 2 )); ACTOR_GPUS_PER_NODE="$GPUS_PER_NODE"; LAYOUT=()
else
  ACTOR_NUM_NODES=1; ACTOR_GPUS_PER_NODE=$(( GPUS_PER_NODE / 2 )); LAYOUT=()
fi
VLLM_NUM_ENGINES="${VLLM_NUM_ENGINES:-$(( TOTAL_GPUS - ACTOR_NUM_NODES * ACTOR_GPUS_PER_NODE ))}"
ARGS=(--config "$RECIPE" --actor.num_nodes "$ACTOR_NUM_NODES" --actor.num_gpus_per_node "$ACTOR_GPUS_PER_NODE"
      --vllm.num_engines "$VLLM_NUM_ENGINES" "${LAYOUT[@]}")

[ -n "${MODEL:-}" ] && ARGS+=(--actor.model_name_or_path "$MODEL")
[ -n "${DATA:-}" ] && ARGS+=(--data.prompt_dataset "$DATA")
[ -n "${EVAL_DATA:-}" ] && ARGS+=(--eval.dataset "$EVAL_DATA" --eval.steps "${EVAL_STEPS:--1}" --eval.temperature 0.6)
[ -n "${OUT:-}" ] && ARGS+=(--ckpt.output_dir "$OUT/final" --ckpt.path "$OUT/ckpt" --pr.log.run_dir "$OUT/run")
[ -n "${WANDB_API_KEY:-}" ] && ARGS+=(--logger.wandb.key "$WANDB_API_KEY" --logger.wandb.project pixel-reasoner
                                      --logger.wandb.run_name "${RUN_NAME:-pixel-reasoner-rl-7b}")
[ "${DRY_RUN:-0}" = "1" ] && ARGS+=(--dry-run)

# Knobs of the previous version of this script (one environment variable per setting) still work, for one
# release: each one given is passed as its flag, with a note naming the flag.
deprecated() {  # VARIABLE FLAG...
  local name="$1"; shift
  if [ -n "${!name:-}" ]; then
    echo "rl_7b.sh: $name is deprecated, pass $* ${!name} (or set it in the recipe)" >&2
    ARGS+=("$@" "${!name}")
  fi
}
deprecated N_SAMPLES --rollout.n_samples_per_prompt;   deprecated ROLLOUT_BATCH --rollout.batch_size
deprecated TRAIN_BATCH --train.batch_size;             deprecated MICRO_TRAIN_BATCH --train.micro_batch_size
deprecated MICRO_ROLLOUT_BATCH --rollout.micro_batch_size; deprecated NUM_EPISODES --train.num_episodes
deprecated LR --actor.adam.lr;                         deprecated LR_SCHEDULER --actor.lr_scheduler
deprecated WARMUP --actor.lr_warmup_ratio;             deprecated MIN_LR_RATIO --actor.min_lr_ratio
deprecated ADV_ESTIMATOR --algo.advantage.estimator;   deprecated DUAL_CLIP --actor.dual_clip
deprecated TEMPERATURE --rollout.temperature;          deprecated TOP_P --rollout.top_p
deprecated MAX_LEN --data.max_len;                     deprecated ZERO_STAGE --ds.zero_stage
deprecated SAVE_STEPS --ckpt.save_steps;               deprecated VLLM_TP --vllm.tensor_parallel_size
deprecated VLLM_GPU_UTIL --vllm.gpu_memory_utilization
deprecated_set() {  # VARIABLE KEY: a setting inside pixel_reasoner.rewards.settings
  if [ -n "${!1:-}" ]; then
    echo "rl_7b.sh: $1 is deprecated, pass --pr.set $2=${!1} (or set it in the recipe)" >&2
    ARGS+=(--pr.set "$2=${!1}")
  fi
}
deprecated_set ALPHA rewards.settings.curiosity.weight;  deprecated_set BETA rewards.settings.efficiency.weight
deprecated_set H rewards.settings.curiosity.rapr_threshold
deprecated_set N_FREE_OPS rewards.settings.efficiency.free_operations
deprecated_set PIXEL_REASONING rewards.settings.curiosity.pixel_reasoning
deprecated CURIOSITY_VARIANT --pr.curiosity.variant
deprecated SSR --pr.ssr.enabled;                       deprecated SSR_BATCH_FRACTION --pr.ssr.batch_fraction
deprecated SSR_CAPACITY --pr.ssr.capacity;             deprecated SSR_STALE_LOGPROBS --pr.ssr.stale_logprobs
deprecated SSR_MAX_BYTES --pr.ssr.max_bytes;           deprecated PROFILE --pr.rollout.profile
deprecated MAX_OPERATIONS --pr.rollout.limits.max_operations; deprecated MAX_TURNS --pr.rollout.limits.max_turns
deprecated MAX_TURN_TOKENS --pr.rollout.max_turn_tokens; deprecated BUDGETS --pr.rollout.budget_preset
deprecated IMAGE_CACHE_BYTES --pr.rollout.image_cache_bytes
if [ -n "${MAX_IMAGES:-}" ]; then
  echo "rl_7b.sh: MAX_IMAGES is deprecated, pass --pr.rollout.limits.max_images and --data.max_images_per_prompt" >&2
  ARGS+=(--pr.rollout.limits.max_images "$MAX_IMAGES" --data.max_images_per_prompt "$MAX_IMAGES")
fi
[ "${FREEZE_VISION:-0}" = "1" ] && ARGS+=(--actor.freeze_visual_encoder)

export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
cd "$REPO"
exec "$PYTHON" -m openrlhf_ext.train "${ARGS[@]}" "$@"

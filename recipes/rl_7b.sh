#!/usr/bin/env bash
# Pixel Reasoner phase 2 (RL) on Qwen2.5-VL-7B: GRPO + curiosity-driven reward + selective sample replay.
#
# Submit to a running Ray cluster (the repository at the same path on every node, its venv activated there):
#   ray job submit --address http://HEAD:8265 -- bash /path/to/pixel-reasoner/recipes/rl_7b.sh
# or run on the head node directly:  bash recipes/rl_7b.sh
# Print the resolved command and configuration without a GPU (nothing starts):
#   DRY_RUN=1 bash recipes/rl_7b.sh
# The launcher is upstream's train_ppo_ray with our hooks: scripts/install.sh patches the installed OpenRLHF
# (or `python -m patches apply --target <site-packages>`); it refuses to start on an unpatched one.
#
# Defaults are the paper's settings (appendix C.3; docs/rl.md lists each with its source): warm-start
# checkpoint, 8 samples per query, 512 queries per rollout, 256 query-response pairs per optimizer step,
# lr 1e-6 cosine with 3% warmup, α=0.5 β=0.05 H=0.3 N=1, GRPO as the official code computes it (r − group mean,
# upstream's `dr_grpo`; `group_norm` would divide by the group std and make α and β scale-free), no reference model.
# The paper trained on 4 nodes x 8 A800-80GB for ~20 hours (640 GPU-hours). Single node 8x80GB is the default
# here (expect ~4x longer); multi-node: NNODES=4 (and start Ray workers on the other nodes first).
# Every knob below is an environment variable; anything after the script name goes to the launcher verbatim
# (e.g. `bash recipes/rl_7b.sh --pr.ssr.stale_logprobs recompute`).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"

# --- model, data, outputs
MODEL="${MODEL:-TIGER-Lab/PixelReasoner-WarmStart}"          # SFT warm start (phase 1)
DATA="${DATA:-$REPO/data/rl/prompts.jsonl}"                   # python -m openrlhf_ext.data convert --input release.parquet
EVAL_DATA="${EVAL_DATA:-}"                                    # optional prompt JSONL for periodic eval
OUT="${OUT:-$REPO/out/rl_7b}"
RUN_NAME="${RUN_NAME:-pixel-reasoner-rl-7b}"

# --- cluster layout (single node 8x80GB by default)
NNODES="${NNODES:-1}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
TOTAL_GPUS=$(( NNODES * GPUS_PER_NODE ))
COLOCATE="${COLOCATE:-0}"                                     # 1: actor and vLLM share every GPU (sleep mode)
if [ "$COLOCATE" = "1" ]; then
  ACTOR_NUM_NODES="${ACTOR_NUM_NODES:-$NNODES}"
  ACTOR_GPUS_PER_NODE="${ACTOR_GPUS_PER_NODE:-$GPUS_PER_NODE}"
  VLLM_NUM_ENGINES="${VLLM_NUM_ENGINES:-$TOTAL_GPUS}"
else                                                          # half the GPUs train, half generate
  if [ "$NNODES" -gt 1 ]; then
    ACTOR_NUM_NODES="${ACTOR_NUM_NODES:-$(( NNODES / 2 ))}"
    ACTOR_GPUS_PER_NODE="${ACTOR_GPUS_PER_NODE:-$GPUS_PER_NODE}"
  else
    ACTOR_NUM_NODES="${ACTOR_NUM_NODES:-1}"
    ACTOR_GPUS_PER_NODE="${ACTOR_GPUS_PER_NODE:-$(( GPUS_PER_NODE / 2 ))}"
  fi
  VLLM_NUM_ENGINES="${VLLM_NUM_ENGINES:-$(( TOTAL_GPUS - ACTOR_NUM_NODES * ACTOR_GPUS_PER_NODE ))}"
fi
VLLM_TP="${VLLM_TP:-1}"                                       # 7B fits one GPU per engine
VLLM_GPU_UTIL="${VLLM_GPU_UTIL:-0.85}"                        # official script: 0.85

# --- RL algorithm (paper C.3 unless noted)
N_SAMPLES="${N_SAMPLES:-8}"                                   # responses per query
ROLLOUT_BATCH="${ROLLOUT_BATCH:-512}"                         # queries per rollout ("episode" in the paper)
TRAIN_BATCH="${TRAIN_BATCH:-256}"                             # query-response pairs per optimizer step
MICRO_TRAIN_BATCH="${MICRO_TRAIN_BATCH:-1}"                   # per GPU; ~12k-token multi-image sequences
MICRO_ROLLOUT_BATCH="${MICRO_ROLLOUT_BATCH:-1}"               # log-prob forward; official code required 1
NUM_EPISODES="${NUM_EPISODES:-3}"                             # passes over the data (official script: nepoch=3)
LR="${LR:-1e-6}"
LR_SCHEDULER="${LR_SCHEDULER:-cosine_with_min_lr}"
WARMUP="${WARMUP:-0.03}"
MIN_LR_RATIO="${MIN_LR_RATIO:-0.5}"                           # official code: cosine down to 0.5 x lr
EPS_CLIP_LOW="${EPS_CLIP_LOW:-0.2}"                           # official code: asymmetric clip 0.2 / 0.35
EPS_CLIP_HIGH="${EPS_CLIP_HIGH:-0.35}"
ADV_ESTIMATOR="${ADV_ESTIMATOR:-dr_grpo}"                     # official: r − mean(group); group_norm also divides by std
DUAL_CLIP="${DUAL_CLIP:-3}"                                   # caps −r·A of stale SSR replays with A < 0 (not official)
TEMPERATURE="${TEMPERATURE:-1.0}"
TOP_P="${TOP_P:-0.95}"                                        # official script
MAX_LEN="${MAX_LEN:-12288}"                                   # prompt + all turns + image tokens (official ~12k)
ZERO_STAGE="${ZERO_STAGE:-3}"
FREEZE_VISION="${FREEZE_VISION:-0}"                           # 1: train the language model only
SAVE_STEPS="${SAVE_STEPS:-5}"
EVAL_STEPS="${EVAL_STEPS:--1}"
# curiosity-driven reward (Eq. 10) and SSR
ALPHA="${ALPHA:-0.5}"; BETA="${BETA:-0.05}"; H="${H:-0.3}"; N_FREE_OPS="${N_FREE_OPS:-1}"
CURIOSITY_VARIANT="${CURIOSITY_VARIANT:-paper}"               # or reference_code (the official constants)
PIXEL_REASONING="${PIXEL_REASONING:-executed}"                # 1_PR: an operation executed | requested (official)
SSR="${SSR:-true}"
SSR_BATCH_FRACTION="${SSR_BATCH_FRACTION:-0.5}"               # official SSR: half of each rollout
SSR_CAPACITY="${SSR_CAPACITY:-$(( ROLLOUT_BATCH * N_SAMPLES ))}"
SSR_STALE_LOGPROBS="${SSR_STALE_LOGPROBS:-keep}"              # keep (official) | recompute
SSR_MAX_BYTES="${SSR_MAX_BYTES:-68719476736}"                 # 64 GiB of controller memory for the buffer (not official)
# rollout agent (visual operations); the official RL limits and pixel budgets
PROFILE="${PROFILE:-released}"                                # tool protocol of the released checkpoints
MAX_OPERATIONS="${MAX_OPERATIONS:-4}"
MAX_TURNS="${MAX_TURNS:-6}"
MAX_TURN_TOKENS="${MAX_TURN_TOKENS:-2048}"                    # new tokens per assistant turn (official code)
MAX_IMAGES="${MAX_IMAGES:-16}"                                # every image of a trajectory (official: 16; a
                                                              # prompt video is a video, not images)
BUDGETS="${BUDGETS:-consistent}"                              # as SFT and eval: originals 256-2000, crops 256-1000,
                                                              # frames <=400 tokens (paper_rl: the official RL's)
IMAGE_CACHE_BYTES="${IMAGE_CACHE_BYTES:-4294967296}"

DRY=()
[ "${DRY_RUN:-0}" = "1" ] && DRY=(--dry-run)
COLOC=()
[ "$COLOCATE" = "1" ] && COLOC=(--train.colocate_all --vllm.enable_sleep --ds.enable_sleep)
FREEZE=()
[ "$FREEZE_VISION" = "1" ] && FREEZE=(--actor.freeze_visual_encoder)
EVAL=()
[ -n "$EVAL_DATA" ] && EVAL=(--eval.dataset "$EVAL_DATA" --eval.steps "$EVAL_STEPS" --eval.temperature 0.6)
WANDB=()
[ -n "${WANDB_API_KEY:-}" ] && WANDB=(--logger.wandb.key "$WANDB_API_KEY" --logger.wandb.project pixel-reasoner
                                      --logger.wandb.run_name "$RUN_NAME")

export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
cd "$REPO"
exec "$PYTHON" -m openrlhf_ext.train "${DRY[@]}" \
  --actor.model_name_or_path "$MODEL" \
  --actor.num_nodes "$ACTOR_NUM_NODES" --actor.num_gpus_per_node "$ACTOR_GPUS_PER_NODE" \
  --vllm.num_engines "$VLLM_NUM_ENGINES" --vllm.tensor_parallel_size "$VLLM_TP" \
  --vllm.gpu_memory_utilization "$VLLM_GPU_UTIL" --vllm.enable_prefix_caching "${COLOC[@]}" \
  --algo.advantage.estimator "$ADV_ESTIMATOR" --algo.kl.init_coef 0 \
  --rollout.n_samples_per_prompt "$N_SAMPLES" --rollout.batch_size "$ROLLOUT_BATCH" \
  --rollout.micro_batch_size "$MICRO_ROLLOUT_BATCH" --rollout.temperature "$TEMPERATURE" --rollout.top_p "$TOP_P" \
  --train.batch_size "$TRAIN_BATCH" --train.micro_batch_size "$MICRO_TRAIN_BATCH" \
  --train.num_episodes "$NUM_EPISODES" --train.max_epochs 1 \
  --actor.adam.lr "$LR" --actor.lr_scheduler "$LR_SCHEDULER" --actor.lr_warmup_ratio "$WARMUP" \
  --actor.min_lr_ratio "$MIN_LR_RATIO" --actor.eps_clip_low_high "$EPS_CLIP_LOW" "$EPS_CLIP_HIGH" \
  --actor.dual_clip "$DUAL_CLIP" \
  --actor.gradient_checkpointing_enable "${FREEZE[@]}" \
  --ds.zero_stage "$ZERO_STAGE" --ds.param_dtype bf16 --ds.attn_implementation flash_attention_2 \
  --data.prompt_dataset "$DATA" --data.input_key input --data.label_key label --data.image_key images \
  --data.apply_chat_template --data.max_images_per_prompt "$MAX_IMAGES" --data.max_len "$MAX_LEN" \
  --train.agent_func_path "$REPO/openrlhf_ext/agent.py" \
  --ckpt.output_dir "$OUT/final" --ckpt.path "$OUT/ckpt" --ckpt.save_steps "$SAVE_STEPS" --ckpt.save_hf \
  --ckpt.load_enable "${EVAL[@]}" "${WANDB[@]}" \
  --pr.curiosity.alpha "$ALPHA" --pr.curiosity.beta "$BETA" --pr.curiosity.rapr_threshold "$H" \
  --pr.curiosity.free_operations "$N_FREE_OPS" --pr.curiosity.variant "$CURIOSITY_VARIANT" \
  --pr.curiosity.pixel_reasoning "$PIXEL_REASONING" \
  --pr.ssr.enabled "$SSR" --pr.ssr.batch_fraction "$SSR_BATCH_FRACTION" --pr.ssr.capacity "$SSR_CAPACITY" \
  --pr.ssr.stale_logprobs "$SSR_STALE_LOGPROBS" --pr.ssr.max_bytes "$SSR_MAX_BYTES" \
  --pr.rollout.profile "$PROFILE" --pr.rollout.limits.max_operations "$MAX_OPERATIONS" \
  --pr.rollout.limits.max_turns "$MAX_TURNS" --pr.rollout.limits.max_images "$MAX_IMAGES" \
  --pr.rollout.max_turn_tokens "$MAX_TURN_TOKENS" \
  --pr.rollout.budgets.preset "$BUDGETS" --pr.rollout.image_cache_bytes "$IMAGE_CACHE_BYTES" \
  --pr.log.run_dir "$OUT/run" \
  "$@"

# Sourced by recipes/rl_tiny_cpu.sh and recipes/rl_toy_cpu.sh (not run on its own): the environment a CPU-mode RL
# run needs and the launcher call both recipes make, so the two cannot drift apart.
#
# The caller sets REPO, PYTHON, WORK and MODEL, and the prepared inputs live in $WORK/inputs
# (pixel_reasoner.yaml, prompts.jsonl). `launch_cpu_rl RECIPE_YAML [FLAGS...]` replaces the shell with
# `python -m openrlhf_ext.train`. DeepSpeed's CPU communication op is built once per checkout in
# .cache/torch_extensions (~2.5 min on 2 cores), not once per WORK.

export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}" TOKENIZERS_PARALLELISM=false
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$REPO/.cache/torch_extensions}"
export VLLM_CACHE_ROOT="${VLLM_CACHE_ROOT:-$WORK/vllm_cache}"

launch_cpu_rl() {
  local recipe="$1"
  shift
  local dry=()
  [ "${DRY_RUN:-0}" = "1" ] && dry=(--dry-run)
  exec "$PYTHON" -m openrlhf_ext.train --config "$recipe" "${dry[@]}" \
    --pr.config "$WORK/inputs/pixel_reasoner.yaml" --actor.model_name_or_path "$MODEL" \
    --data.prompt_dataset "$WORK/inputs/prompts.jsonl" --ckpt.output_dir "$WORK/ckpt" --ckpt.path "$WORK/ckpt_ds" \
    --pr.log.run_dir "$WORK/run" --pr.cpu.sync_dump_dir "${SYNC_DUMP:-$WORK/sync}" \
    "$@"
}

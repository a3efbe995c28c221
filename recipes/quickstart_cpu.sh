#!/usr/bin/env bash
# Pixel Reasoner end to end on one CPU machine, for real, in about 10 minutes (2 cores, ~8 GiB at the RL stage):
# every stage runs the same command-line tool a GPU user runs at 7B scale, on a tiny random Qwen2.5-VL, and writes
# the same files. See docs/quickstart.md for what each stage does and how to scale it up.
#
#   bash recipes/quickstart_cpu.sh            # writes quickstart_out/; a rerun resumes (finished stages are kept)
#   bash recipes/quickstart_cpu.sh --clean    # start over
#
#   1. model      python -m pixel_reasoner.testing.tiny_qwen           the tiny model (real Qwen vocabulary, offline)
#   2. synthesis  vLLM's OpenAI server + python -m data_synthesis run   seeds -> trajectories (a random model's
#                                                                       analyses are rejected: template fallback)
#   3. sft        accelerate launch open_r1_ext/sft.py                  a few masked SFT steps
#   4. rl         recipes/rl_tiny_cpu.sh (python -m openrlhf_ext.train) a few GRPO steps: vLLM rollouts with our agent,
#                                                                       curiosity reward, SSR, DeepSpeed, weight sync
#   5. eval       python -m eval run/score/report                       V*, TallyQA, InfoVQA, MVBench layouts
#   6. outputs    pixel-reasoner view                                   the HTML trajectory viewer, metrics.json
#
# Knobs (environment): OUT (output directory, default quickstart_out), PYTHON (default .venv/bin/python).
# Every process this script starts carries PIXEL_REASONER_QUICKSTART_RUN in its environment; on exit (normal,
# error or Ctrl-C) the script stops those processes, and only those.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
CLEAN=0
for arg in "$@"; do
  case "$arg" in
    --clean) CLEAN=1;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0;;
    *) echo "quickstart: unknown argument '$arg' (use --clean, --help)" >&2; exit 2;;
  esac
done
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
if [ ! -x "$PYTHON" ]; then
  echo "quickstart: no Python environment at $PYTHON; run 'bash scripts/install.sh' first (or set PYTHON)" >&2
  exit 2
fi
OUT="$(mkdir -p "${OUT:-$REPO/quickstart_out}" && cd "${OUT:-$REPO/quickstart_out}" && pwd)"
MARKER="$OUT/.stages"
if [ "$CLEAN" = 1 ]; then
  if [ -n "$(ls -A "$OUT")" ] && [ ! -d "$MARKER" ]; then
    echo "quickstart: $OUT is not empty and was not written by this script; refusing to delete it (set OUT)" >&2
    exit 2
  fi
  rm -rf "$OUT" && mkdir -p "$OUT"
fi
mkdir -p "$MARKER" "$OUT/logs"
LOGS="$OUT/logs"

export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PIXEL_REASONER_QUICKSTART_RUN="$$-$(date +%s%N)"
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export VLLM_ENABLE_V1_MULTIPROCESSING=0 VLLM_CPU_KVCACHE_SPACE=1 VLLM_CACHE_ROOT="$OUT/.cache/vllm"
START=$(date +%s)

log() { local t=$(( $(date +%s) - START )); printf '[quickstart %02d:%02d] %s\n' $((t / 60)) $((t % 60)) "$*"; }

# -- processes ---------------------------------------------------------------------------------------------------
is_own() {  # PID: does its environment carry this run's marker?
  grep -qzx "PIXEL_REASONER_QUICKSTART_RUN=$PIXEL_REASONER_QUICKSTART_RUN" "/proc/$1/environ" 2>/dev/null
}
signal_own() {  # SIGNAL: every process started by this run (not this shell), checked again right before the signal
  local f pid n=0
  for f in /proc/[0-9]*/environ; do
    pid=${f#/proc/}; pid=${pid%/environ}
    { [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ]; } && continue
    if is_own "$pid"; then kill "-$1" "$pid" 2>/dev/null && n=$((n + 1)); fi
  done
  echo "$n"
}
stop_pid() {  # SIGTERM, then SIGKILL after 20 s
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "${SERVER_PID:-}" ] && stop_pid "$SERVER_PID"
  if [ "$(signal_own TERM)" != 0 ]; then
    sleep 3
    signal_own KILL >/dev/null
  fi
  [ $rc -ne 0 ] && log "stopped (exit $rc); logs in $LOGS; rerun the same command to resume"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

run_logged() {  # LOG COMMAND...: the command's output goes to LOG; on failure its tail is shown
  local logfile=$1; shift
  echo "\$ $*" >>"$logfile"
  if ! "$@" >>"$logfile" 2>&1; then
    echo "---- command failed: $*" >&2
    echo "---- last lines of $logfile:" >&2
    tail -n 40 "$logfile" >&2
    return 1
  fi
}

STAGE_NAMES=(model synthesis sft rl eval outputs)
STAGES=${#STAGE_NAMES[@]}
declare -A STAGE_OUTPUTS=([model]="model" [synthesis]="seeds synthesis" [sft]="sft" [rl]="rl" [eval]="eval report.md"
                          [outputs]="view.html")
stage() {  # K NAME WHAT: run stage_NAME unless a previous run finished it
  local k=$1 name=$2 what=$3 t0 dt later output
  if [ -f "$MARKER/$name.done" ]; then
    log "stage $k/$STAGES $name: $what -- finished in an earlier run, kept (--clean to redo)"
    return 0
  fi
  for later in "${STAGE_NAMES[@]:$k}"; do  # what follows was made from this stage's old output: start it afresh
    rm -f "$MARKER/$later.done"
    for output in ${STAGE_OUTPUTS[$later]}; do rm -rf "${OUT:?}/$output"; done
  done
  log "stage $k/$STAGES $name: $what ..."
  t0=$(date +%s)
  "stage_$name"
  dt=$(( $(date +%s) - t0 ))
  printf '{"stage": %d, "name": "%s", "seconds": %d}\n' "$k" "$name" "$dt" >"$MARKER/$name.done"
  log "stage $k/$STAGES $name: done in ${dt}s"
}
write_timings() {  # the timing of every finished stage, in stage order
  local name
  for name in "${STAGE_NAMES[@]}"; do cat "$MARKER/$name.done"; done >"$OUT/timings.jsonl"
}
json_get() {  # FILE EXPR: print a Python expression over the JSON document `d`
  "$PYTHON" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# -- stages ------------------------------------------------------------------------------------------------------
stage_model() {
  rm -rf "$OUT/model"
  run_logged "$LOGS/model.log" "$PYTHON" -m pixel_reasoner.testing.tiny_qwen "$OUT/model"
  log "  tiny Qwen2.5-VL (2 layers, real Qwen vocabulary, random weights): $OUT/model"
}

stage_synthesis() {
  run_logged "$LOGS/synthesis.log" "$PYTHON" -m pixel_reasoner.quickstart seeds "$OUT/seeds"
  local port url
  port=$("$PYTHON" -m pixel_reasoner.quickstart free-port)
  url="http://127.0.0.1:$port/v1"
  OMP_NUM_THREADS=1 "$PYTHON" -m vllm.entrypoints.openai.api_server --model "$OUT/model" --served-model-name tiny \
    --host 127.0.0.1 --port "$port" --max-model-len 4096 --enforce-eager --distributed-executor-backend uni \
    --seed 0 --limit-mm-per-prompt '{"image": 32}' >"$LOGS/vllm_server.log" 2>&1 &
  SERVER_PID=$!
  log "  vLLM OpenAI-compatible server (pid $SERVER_PID) starting on $url"
  "$PYTHON" -m pixel_reasoner.quickstart wait-http "$url/models" --pid "$SERVER_PID" --log "$LOGS/vllm_server.log"
  run_logged "$LOGS/synthesis.log" "$PYTHON" -m data_synthesis run --config recipes/synth_tiny_cpu.yaml \
    --set "endpoints.expert.base_url=$url" --set "endpoints.base.base_url=$url" \
    --set "sources=[{format: jsonl, name: quickstart, path: '$OUT/seeds/seeds.jsonl'}]" \
    --output.dir "$OUT/synthesis" --no-progress
  stop_pid "$SERVER_PID"
  SERVER_PID=""
  log "  server stopped; $(json_get "$OUT/synthesis/stats.json" \
    "f\"{d['trajectories']['total']} trajectories {d['trajectories']['by_type']}, \
{d['trajectories']['from_templates']['total']} composed from templates after the model's output was rejected \
({', '.join(f'{k} {v}' for k, v in d['trajectories']['from_templates']['model_rejections'].items())})\"")"
}

stage_sft() {
  run_logged "$LOGS/sft.log" "$PYTHON" -m accelerate.commands.launch --config_file recipes/accelerate/cpu.yaml \
    open_r1_ext/sft.py --config recipes/sft_quickstart_cpu.yaml --model_name_or_path "$OUT/model" \
    --data_files "$OUT/synthesis/trajectories.jsonl" --output_dir "$OUT/sft"
  log "  $(json_get "$OUT/sft/trainer_state.json" \
    "'SFT losses per step: ' + ', '.join(f\"{h['loss']:.3f}\" for h in d['log_history'] if 'loss' in h)")"
}

stage_rl() {
  if [ ! -f recipes/rl_tiny_cpu.sh ]; then
    echo "quickstart: recipes/rl_tiny_cpu.sh is missing (the RL stage, docs/rl.md)" >&2
    return 1
  fi
  rm -rf "$OUT/rl"
  run_logged "$LOGS/rl.log" env MODEL="$OUT/sft" WORK="$OUT/rl" PYTHON="$PYTHON" bash recipes/rl_tiny_cpu.sh
  log "  per-step statistics ($OUT/rl/run/summary.md; every metric per step in metrics.jsonl):"
  grep '^|' "$OUT/rl/run/summary.md" | sed 's/^/    /'
}

eval_model() {  # the RL run's final model, else (no RL stage output) the SFT model
  local final
  for final in "$OUT/rl/ckpt/final" "$OUT/rl/ckpt"; do
    [ -f "$final/config.json" ] && { echo "$final"; return; }
  done
  echo "$OUT/sft"
}

stage_eval() {
  local bench="$OUT/eval/benchmarks" results="$OUT/eval/results" model b
  rm -rf "$bench"
  run_logged "$LOGS/eval.log" "$PYTHON" -m eval.testing "$bench"
  model=$(eval_model)
  log "  evaluating $model on generated V*, TallyQA, InfoVQA and MVBench data (one vLLM engine for all four)"
  run_logged "$LOGS/eval.log" "$PYTHON" -m eval run --model "$model" \
    --benchmark vstar tallyqa infovqa mvbench \
    --data "$bench/vstar_bench" "$bench/tallyqa" "$bench/infovqa" "$bench/mvbench" \
    --subset mvbench=action_sequence,episodic_reasoning --out "$results" \
    --original-min-pixels 3136 --original-max-pixels 50176 --crop-min-pixels 3136 --crop-max-pixels 25088 \
    --frame-min-pixels 3136 --frame-max-pixels 6272 --max-turn-tokens 128 \
    --max-response-tokens 256 --max-model-len 4096 --dtype float32 --batch-size 32 --save-images \
    --force-first-call
  for b in vstar tallyqa infovqa mvbench; do  # the headline numbers, recomputed from the predictions alone
    run_logged "$LOGS/eval.log" "$PYTHON" -m eval score --benchmark "$b" \
      --predictions "$results/$b/predictions.jsonl" --out "$results/$b/metrics.json"
  done
  run_logged "$LOGS/eval.log" "$PYTHON" -m eval report "$results"/{vstar,tallyqa,mvbench,infovqa}/metrics.json \
    --out "$OUT/report.md"
  for b in vstar tallyqa infovqa mvbench; do
    log "  $b: $(json_get "$results/$b/metrics.json" \
      "f\"score {d['score']:.1f} over {d['n_questions']} questions, RaPR {d['rapr']:.0f}%\"")"
  done
}

stage_outputs() {
  local sources=("$OUT/synthesis/trajectories.jsonl" "$OUT"/eval/results/*/predictions.jsonl)
  run_logged "$LOGS/outputs.log" "$PYTHON" -m pixel_reasoner.cli view "${sources[@]}" --out "$OUT/view.html" \
    --title "Pixel Reasoner quickstart: synthesised trajectories and evaluation"
}

log "Pixel Reasoner CPU quickstart -> $OUT (python: $PYTHON)"
stage 1 model "build the tiny offline Qwen2.5-VL"
stage 2 synthesis "synthesise trajectories with vLLM's OpenAI server + data_synthesis"
stage 3 sft "SFT with loss masking (accelerate launch open_r1_ext/sft.py)"
stage 4 rl "GRPO with curiosity reward and SSR (python -m openrlhf_ext.train, CPU mode)"
stage 5 eval "evaluate on V*, TallyQA, InfoVQA, MVBench layouts (python -m eval)"
stage 6 outputs "trajectory viewer"
write_timings
"$PYTHON" -m pixel_reasoner.quickstart collect "$OUT" >/dev/null
log "done in $(( $(date +%s) - START ))s. Look at:"
cat <<EOF
  $OUT/view.html                    every synthesised trajectory and evaluation response, crops drawn on their images
  $OUT/report.md                    Table-1-style report (paper's numbers for comparison) + RaPR
  $OUT/metrics.json                 every stage's numbers and timings
  $OUT/synthesis/summary.txt        synthesis counts and rejection reasons
  $OUT/sft/                         the SFT checkpoint (sft_run_config.json, data_validation.json)
  $OUT/rl/run/summary.md            RL per-step statistics (curiosity, SSR); metrics.jsonl, groups.jsonl
  $OUT/eval/results/<benchmark>/    predictions.jsonl, metrics.json, run_manifest.json
  $OUT/logs/                        the full output of every command
EOF

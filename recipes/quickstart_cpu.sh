#!/usr/bin/env bash
# Pixel Reasoner end to end on one CPU machine, for real, in about 15 minutes (2 cores, ~9 GiB at the RL stage),
# on a task only zooming solves (docs/learning.md): a tiny Qwen2.5-VL learns the tool protocol through our SFT, and
# every stage runs the same command-line tool a GPU user runs at 7B scale. See docs/quickstart.md.
#
#   bash recipes/quickstart_cpu.sh            # writes quickstart_out/; a rerun resumes (finished stages are kept)
#   bash recipes/quickstart_cpu.sh --clean    # start over
#
#   1. model     python -m pixel_reasoner.testing.tiny_qwen --preset zoom  the tiny model (random, task vocabulary)
#   2. data      python -m pixel_reasoner.zoom_task seeds/bench            training seeds, held-out questions;
#                python -m data_synthesis run                              teacher trajectories (template path)
#   3. base      python -m eval run + python -m eval.learning              the untrained model (no forced calls)
#   4. sft       accelerate launch open_r1_ext/sft.py (twice)              masked SFT: warm-up on close-ups, then the
#                                                                          main data; loss plot (open_r1_ext.plot_loss)
#   5. sft_eval  python -m eval run (tools, and --no-tools)                after SFT, and the tools-disabled ablation
#   6. rl        recipes/rl_toy_cpu.sh (python -m openrlhf_ext.train)      GRPO from the SFT checkpoint, no forced turns
#   7. rl_eval   python -m eval run                                        after RL
#   8. outputs   pixel-reasoner view, metrics.json, report.md              viewer, learning metrics with 95% CIs
#
# Knobs (environment): OUT (output directory, default quickstart_out), PYTHON (default .venv/bin/python),
# SFT_STEPS (default 600), SFT_WARMUP_STEPS (steps on the close-ups first, default 200), SFT_THREADS (CPU threads
# of the SFT process, default 2), RL_STEPS (default 2),
# EVAL_DETAIL / EVAL_COLOUR / EVAL_COUNT (held-out questions, default 100 / 50 / 50).
# Every process this script starts carries PIXEL_REASONER_QUICKSTART_RUN in its environment; on exit (normal,
# error or Ctrl-C) the script stops those processes, and only those.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
CLEAN=0
for arg in "$@"; do
  case "$arg" in
    --clean) CLEAN=1;;
    -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0;;
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
SFT_STEPS="${SFT_STEPS:-600}" SFT_THREADS="${SFT_THREADS:-2}" RL_STEPS="${RL_STEPS:-2}"
EVAL_QUESTIONS=(--detail "${EVAL_DETAIL:-100}" --colour "${EVAL_COLOUR:-50}" --count "${EVAL_COUNT:-50}")
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
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
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

STAGE_NAMES=(model data base sft sft_eval rl rl_eval outputs)
STAGES=${#STAGE_NAMES[@]}
declare -A STAGE_OUTPUTS=([model]="model"
                          [data]="seeds closeup_seeds synthesis synthesis_no_tools synthesis_closeups bench"
                          [base]="eval/base"
                          [sft]="sft_warmup sft sft_loss.png" [sft_eval]="eval/sft eval/sft_no_tools" [rl]="rl"
                          [rl_eval]="eval/rl" [outputs]="view.html report.md metrics.json")
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
  for name in "${STAGE_NAMES[@]}"; do
    if [ -f "$MARKER/$name.done" ]; then cat "$MARKER/$name.done"; fi
  done >"$OUT/timings.jsonl"
}
# -- stages ------------------------------------------------------------------------------------------------------
helper() {  # STAGE_LOG SUBCOMMAND ARGS...: a stage of python -m pixel_reasoner.quickstart; its summary line is shown
  local logfile=$1 summary; shift
  summary=$("$PYTHON" -m pixel_reasoner.quickstart "$@" --log "$logfile")
  log "  $summary"
}

stage_model() { helper "$LOGS/model.log" model "$OUT"; }

stage_data() { helper "$LOGS/data.log" data "$OUT" "${EVAL_QUESTIONS[@]}"; }

stage_base() { helper "$LOGS/eval.log" eval "$OUT" base "$OUT/model"; }

stage_sft() {
  helper "$LOGS/sft.log" sft "$OUT" --steps "$SFT_STEPS" --threads "$SFT_THREADS" \
    ${SFT_WARMUP_STEPS:+--warmup-steps "$SFT_WARMUP_STEPS"}
}

stage_sft_eval() {
  helper "$LOGS/eval.log" eval "$OUT" sft "$OUT/sft" --save-images
  helper "$LOGS/eval.log" eval "$OUT" sft_no_tools "$OUT/sft" --no-tools
}

stage_rl() {
  if [ ! -f recipes/rl_toy_cpu.sh ]; then
    echo "quickstart: recipes/rl_toy_cpu.sh is missing (RL on the zoom task without forced turns, docs/rl.md)" >&2
    return 1
  fi
  rm -rf "$OUT/rl"
  run_logged "$LOGS/rl.log" env MODEL="$OUT/sft" WORK="$OUT/rl" PYTHON="$PYTHON" STEPS="$RL_STEPS" \
    bash recipes/rl_toy_cpu.sh
  log "  per-step statistics ($OUT/rl/run/summary.md; every metric per step in metrics.jsonl):"
  grep '^|' "$OUT/rl/run/summary.md" | sed 's/^/    /'
}

rl_model() {  # the RL run's final model
  local final
  for final in "$OUT/rl/ckpt/final" "$OUT/rl/ckpt"; do
    [ -f "$final/config.json" ] && { echo "$final"; return; }
  done
  echo "quickstart: no RL checkpoint under $OUT/rl/ckpt" >&2
  return 1
}

stage_rl_eval() { helper "$LOGS/eval.log" eval "$OUT" rl "$(rl_model)" --save-images; }

stage_outputs() {  # the viewer: every RL and SFT response to the held-out image questions, then a few teacher rows
  local sources=("$OUT/eval/rl/vstar/predictions.jsonl" "$OUT/eval/sft/vstar/predictions.jsonl") shown
  shown=$(( $(cat "${sources[@]}" | wc -l) + 20 ))
  run_logged "$LOGS/outputs.log" "$PYTHON" -m pixel_reasoner.cli view "${sources[@]}" \
    "$OUT/synthesis/trajectories.jsonl" --limit "$shown" --thumb-size 448 --out "$OUT/view.html" \
    --title "Pixel Reasoner quickstart: evaluation responses after RL and after SFT, and teacher trajectories"
  write_timings
  run_logged "$LOGS/outputs.log" "$PYTHON" -m pixel_reasoner.quickstart collect "$OUT"  # again at the end: timings
  sed -n '/^| stage/,/^$/p' "$OUT/report.md" | sed 's/^/    /'
}

log "Pixel Reasoner CPU quickstart -> $OUT (python: $PYTHON)"
stage 1 model "build the tiny offline Qwen2.5-VL (zoom preset)"
stage 2 data "zoom-task seeds and held-out questions, teacher trajectories (python -m data_synthesis)"
stage 3 base "evaluate the untrained model (python -m eval run, python -m eval.learning)"
stage 4 sft "SFT with loss masking: a warm-up on close-ups, then $SFT_STEPS steps (accelerate launch open_r1_ext/sft.py)"
stage 5 sft_eval "evaluate after SFT, with tools and with --no-tools"
stage 6 rl "$RL_STEPS GRPO steps with curiosity reward and SSR from the SFT checkpoint, no forced turns (CPU mode)"
stage 7 rl_eval "evaluate after RL"
stage 8 outputs "trajectory viewer, metrics.json, report.md"
write_timings
"$PYTHON" -m pixel_reasoner.quickstart collect "$OUT" >/dev/null
log "done in $(( $(date +%s) - START ))s. Look at:"
cat <<EOF
  $OUT/report.md                    accuracy, valid calls, crop contains target, RaPR per stage with 95% CIs
  $OUT/view.html                    the models' own tool calls on held-out questions, crops drawn on their images
  $OUT/sft_loss.png                 the SFT loss curve
  $OUT/metrics.json                 every stage's numbers (its learning section) and timings
  $OUT/synthesis/summary.txt        synthesis counts (teacher trajectories from the ground truth)
  $OUT/sft/                         the SFT checkpoint (sft_run_config.json, data_validation.json)
  $OUT/rl/run/summary.md            RL per-step statistics (curiosity, SSR); metrics.jsonl, groups.jsonl
  $OUT/eval/<stage>/                predictions.jsonl, metrics.json, learning.json per benchmark and stage
  $OUT/logs/                        the full output of every command
EOF

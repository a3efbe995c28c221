"""Loads `openrlhf_ext.cpu_mode` in every Python process of a CPU-mode RL run (debugging/CI only).

The launcher puts this directory on PYTHONPATH only in CPU mode, so every child interpreter (Ray actors, vLLM
engine processes) imports this file at start. It does nothing unless PIXEL_REASONER_CPU_MODE=1.
"""
import os

if os.environ.get("PIXEL_REASONER_CPU_MODE") == "1":
    from openrlhf_ext import cpu_mode

    cpu_mode.install()

"""The rows of the Pixel Reasoner paper's Table 1 (NeurIPS 2025), for side-by-side reports.

Each benchmark's file holds its own column (`Benchmark.paper`: the Table-1 values by row label and the RaPR of
appendix D.1); this file holds what is common to the columns: which rows the table has, in its order.
"""
from __future__ import annotations

PIXEL_REASONER = "Pixel-Reasoner (paper)"
BASELINES = ("Qwen2.5-VL (7B, paper)",)  # models without tools the paper compares against (7B base model only)
ABLATIONS = (  # "Ablation Baselines (Ablated from Pixel-Reasoner)"
    "Warm-Start Model (w/o RL)", "RL w/o Curiosity", "RL w/o Warm-Start", "RL w/o Correction-Data")
TABLE1_ROWS = (PIXEL_REASONER, *BASELINES, *ABLATIONS)

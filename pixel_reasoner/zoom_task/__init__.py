"""A task only zooming can solve, small enough for a tiny model to learn on a laptop (docs/learning.md).

    python -m pixel_reasoner.zoom_task seeds OUT_DIR --n 2000        # synthesis seeds (images, JSONL)
    python -m pixel_reasoner.zoom_task bench OUT_DIR --n 200         # V*-, TallyQA-, MVBench-style eval data
    python -m pixel_reasoner.zoom_task premise --n 200               # the pixel oracle on original vs crop
"""

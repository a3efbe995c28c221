"""Teacher-forced accuracy at the tokens that carry a zoom-task trajectory's decisions.

Loss averages over every trained token, and the fixed protocol text dominates it; whether a model reads the crop
or knows where to zoom shows only at a few tokens: the last crop call's x1 (where to zoom: only the original's
pixels say it) and y1, the pattern line after "... shows:" (only the crop's pixels say it), and the option letter after
it. `tests/sft/test_learning.py` and `bench/sft_plain_loop.py` score those tokens. The zoom vocabulary keeps each
of them one token (`pixel_reasoner.zoom_task.corpus`).
"""
from __future__ import annotations

import json


def decision_positions(tokens: list[str]) -> dict[str, int]:
    """Indices (into the supervised tokens of one trajectory) of its decision tokens: `box_x1`, `box_y1`,
    `crop_class`, `option` (those it has)."""
    found = {}
    calls = [j for j, t in enumerate(tokens) if t == "<tool_call>"]
    opening = [j for j in range(calls[-1], len(tokens)) if tokens[j].endswith("[")] if calls else []
    if opening:
        found["box_x1"] = opening[0] + 1  # '"bbox_2d": [' then x1
        numbers = [j for j in range(opening[0] + 2, len(tokens)) if tokens[j].strip().isdigit()]
        if numbers:
            found["box_y1"] = numbers[0]
    shows = [j for j, t in enumerate(tokens) if t.endswith("shows:\n")]
    if shows and shows[-1] + 2 < len(tokens):
        found["crop_class"], found["option"] = shows[-1] + 1, shows[-1] + 2
    return found


def decision_accuracy(model, collator, tokenizer, rows: list[dict], batch_size: int = 8) -> dict[str, float]:
    """Teacher-forced accuracy of each decision over trajectory rows, and the mean loss per token."""
    import torch

    hits: dict[str, list[int]] = {}
    losses = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            batch = collator([{"sample": json.dumps(r)} for r in rows[i:i + batch_size]])
            out = model(**batch)
            losses.append(float(out.loss))
            predicted, labels = out.logits[:, :-1].argmax(-1), batch["labels"][:, 1:]
            for r in range(labels.shape[0]):
                positions = (labels[r] != -100).nonzero().flatten().tolist()
                tokens = [tokenizer.decode([int(labels[r, q])]) for q in positions]
                for name, j in decision_positions(tokens).items():
                    hits.setdefault(name, []).append(int(predicted[r, positions[j]] == labels[r, positions[j]]))
    model.train(was_training)
    return {**{name: sum(h) / len(h) for name, h in hits.items()}, "loss": sum(losses) / len(losses)}

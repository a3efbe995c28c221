"""How SFT batches draw their rows (`batch_sampling`): the Trainer's epochs of a random permutation, or rows drawn
independently with replacement.

Why an option: on the zoom task (docs/learning.md, "Batch sampling"), the tiny model learned to read the crop by
step 150-250 in 5 of 5 plain-loop runs that drew rows with replacement, and in none of 7 that drew epochs of a
permutation (the Trainer's default; 250-1,200 steps), with the same data, model, schedule and optimiser. The two
Trainer runs with this sampler had not read it by step 300 either, although the Trainer optimises exactly like the
plain loop on the same batches (`bench/sft_trainer_parity.py`): the draw order moves that phase change, and
whether independent draws help at all is unsettled. The 7B recipes keep the Trainer's default.
"""
from __future__ import annotations

BATCH_SAMPLING = ("permutation", "replacement")


def with_batch_sampling(trainer_class: type, batch_sampling: str) -> type:
    """`trainer_class` itself for `permutation`; for `replacement`, a subclass whose training sampler draws
    `len(dataset)` rows per epoch independently, with replacement, seeded by `TrainingArguments.seed`."""
    if batch_sampling == "permutation":
        return trainer_class

    class ReplacementSamplingTrainer(trainer_class):
        def _get_train_sampler(self, train_dataset=None):
            import torch
            from torch.utils.data import RandomSampler

            dataset = self.train_dataset if train_dataset is None else train_dataset
            generator = torch.Generator().manual_seed(self.args.seed)
            return RandomSampler(dataset, replacement=True, num_samples=len(dataset), generator=generator)

    ReplacementSamplingTrainer.__name__ = f"{trainer_class.__name__}WithReplacementSampling"
    return ReplacementSamplingTrainer

"""How SFT batches draw their rows (`batch_sampling`): the Trainer's epochs of a random permutation, or rows drawn
independently with replacement; and how an optimizer step's rows are split into micro-batches
(`sort_step_by_length`).

Why an option: on the zoom task (docs/learning.md, "Batch sampling"), the tiny model learned to read the crop by
step 150-250 in 5 of 5 plain-loop runs that drew rows with replacement, and in none of 7 that drew epochs of a
permutation (the Trainer's default; 250-1,200 steps), with the same data, model, schedule and optimiser. The two
Trainer runs with this sampler had not read it by step 300 either, although the Trainer optimises exactly like the
plain loop on the same batches (`bench/sft_trainer_parity.py`): the draw order moves that phase change, and
whether independent draws help at all is unsettled. The 7B recipes keep the Trainer's default.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

BATCH_SAMPLING = ("permutation", "replacement")


class LengthSortedSteps:
    """The rows of `sampler`, in chunks of one optimizer step (`step_rows` = per-device batch x accumulation
    steps x processes), each chunk ordered by token length.

    Why: micro-batches pad to their longest row, so a step whose short and long rows share micro-batches computes
    much padding (zoom task: rows of 156 tokens on average, 278 at most). Sorted, each micro-batch holds rows of
    similar length. The step's rows are the same, so is its gradient under token loss averaging (the Trainer
    divides every micro-batch by the step's trained-token count) and under sample averaging (equal micro-batch
    sizes)."""

    def __init__(self, sampler, lengths: Sequence[int], step_rows: int) -> None:
        self.sampler, self.lengths, self.step_rows = sampler, lengths, step_rows

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[int]:
        chunk: list[int] = []
        for index in self.sampler:
            chunk.append(index)
            if len(chunk) == self.step_rows:
                yield from sorted(chunk, key=self.lengths.__getitem__)
                chunk = []
        yield from sorted(chunk, key=self.lengths.__getitem__)


def row_lengths(dataset) -> list[int]:
    """Each row's collated token count, as `SampleValidator` recorded it in the row's sample."""
    return [json.loads(sample)["tokens"] for sample in dataset["sample"]]


def with_batch_sampling(trainer_class: type, batch_sampling: str, sort_step_by_length: bool = False) -> type:
    """`trainer_class` itself for `permutation` without sorting; otherwise a subclass whose training sampler
    draws `len(dataset)` rows per epoch independently, with replacement, seeded by `TrainingArguments.seed`
    (`replacement`), and/or orders each optimizer step's rows by length (`sort_step_by_length`)."""
    if batch_sampling == "permutation" and not sort_step_by_length:
        return trainer_class

    class SamplingTrainer(trainer_class):
        def _get_train_sampler(self, train_dataset=None):
            import torch
            from torch.utils.data import RandomSampler

            dataset = self.train_dataset if train_dataset is None else train_dataset
            if batch_sampling == "replacement":
                generator = torch.Generator().manual_seed(self.args.seed)
                sampler = RandomSampler(dataset, replacement=True, num_samples=len(dataset), generator=generator)
            else:
                sampler = super()._get_train_sampler(train_dataset)
            if not sort_step_by_length:
                return sampler
            step_rows = (self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps
                         * self.args.world_size)
            return LengthSortedSteps(sampler, row_lengths(dataset), step_rows)

    SamplingTrainer.__name__ = f"{trainer_class.__name__}With{batch_sampling.title()}Sampling" + (
        "SortedSteps" if sort_step_by_length else "")
    return SamplingTrainer

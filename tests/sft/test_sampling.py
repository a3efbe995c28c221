"""`batch_sampling`: the Trainer's own sampler for `permutation`; independent draws with replacement, seeded by
the run's seed, for `replacement` (the zoom-task recipe)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from trl import SFTTrainer

from open_r1_ext.sampling import with_batch_sampling
from open_r1_ext.sft import parse_args


def _draws(trainer_class: type, seed: int, rows: int = 50) -> list[int]:
    fake = SimpleNamespace(train_dataset=list(range(rows)), args=SimpleNamespace(seed=seed))
    return list(trainer_class._get_train_sampler(fake))


def test_permutation_keeps_the_trainer_class():
    assert with_batch_sampling(SFTTrainer, "permutation") is SFTTrainer


def test_replacement_draws_independently_and_repeats_with_the_seed():
    replacing = with_batch_sampling(SFTTrainer, "replacement")
    assert issubclass(replacing, SFTTrainer)
    draws = _draws(replacing, seed=0)
    assert len(draws) == 50 and all(0 <= i < 50 for i in draws)
    assert len(set(draws)) < 50  # with replacement: 50 draws of 50 rows repeat some (p of none ~ 3e-21)
    assert draws == _draws(replacing, seed=0) and draws != _draws(replacing, seed=1)


def test_an_unknown_sampling_is_refused_with_the_choices(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--model_name_or_path", "m", "--data_files", "x.jsonl", "--output_dir", str(tmp_path),
                    "--batch_sampling", "shuffle"])
    error = capsys.readouterr().err
    assert "batch_sampling" in error and "permutation" in error and "replacement" in error


def test_sorted_steps_keep_each_steps_rows_and_order_them_by_length():
    from open_r1_ext.sampling import LengthSortedSteps

    lengths = [50, 10, 40, 30, 20, 60, 5]
    draws = [0, 1, 2, 3, 4, 5, 6, 2, 0, 1]  # a base sampler's stream: steps of 4 rows, the last one partial
    sorted_steps = list(LengthSortedSteps(draws, lengths, step_rows=4))
    assert sorted_steps == [1, 3, 2, 0, 6, 4, 2, 5, 1, 0]
    for start in range(0, len(draws), 4):
        assert sorted(sorted_steps[start:start + 4]) == sorted(draws[start:start + 4])


def test_sorting_wraps_either_sampling_with_steps_of_the_global_batch():
    from open_r1_ext.sampling import LengthSortedSteps

    rows = [json.dumps({"tokens": n}) for n in (30, 10, 20, 40, 50, 60)]
    args = SimpleNamespace(seed=0, per_device_train_batch_size=2, gradient_accumulation_steps=3, world_size=1)
    for sampling in ("replacement", "permutation"):
        trainer = object.__new__(with_batch_sampling(_PlainTrainer, sampling, sort_step_by_length=True))
        trainer.train_dataset, trainer.args = _Rows(rows), args
        sampler = trainer._get_train_sampler()
        assert isinstance(sampler, LengthSortedSteps) and sampler.step_rows == 6
        drawn = list(sampler)
        assert [json.loads(rows[i])["tokens"] for i in drawn] == sorted(json.loads(rows[i])["tokens"] for i in drawn)


class _Rows(list):
    """A dataset of sample JSON strings, indexable by column like `datasets.Dataset`."""

    def __getitem__(self, key):
        return list(self) if key == "sample" else list.__getitem__(self, key)


class _PlainTrainer:
    """The Trainer's `permutation` sampler: a seeded random permutation."""

    def _get_train_sampler(self, train_dataset=None):
        import torch
        from torch.utils.data import RandomSampler

        return RandomSampler(self.train_dataset, generator=torch.Generator().manual_seed(self.args.seed))

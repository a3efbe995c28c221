"""`batch_sampling`: the Trainer's own sampler for `permutation`; independent draws with replacement, seeded by
the run's seed, for `replacement` (the zoom-task recipe)."""
from __future__ import annotations

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

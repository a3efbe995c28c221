"""RL reward terms (`pixel_reasoner.rewards`): the paper's Eq. 10 as three registered terms on the paper's numbers
and edge cases, the config that weights them, and the worked example `examples/rewards/failed_call_penalty.py`."""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel_reasoner.errors import ConfigError, DataError
from pixel_reasoner.rewards import SampleOutcome, registered_rewards
from pixel_reasoner.rewards.shaping import RewardConfig, group_rewards, sample_rewards

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "rewards", "failed_call_penalty.py")


def outcome(n_vo=0, executed=None, correct=0.0, errors=0, is_video=False, **kw):
    executed = n_vo > 0 if executed is None else executed
    return SampleOutcome(correct=correct, num_operations=n_vo, num_operation_errors=errors,
                         num_images=int(executed), turns=n_vo + 1, answered=True, truncated=False, is_video=is_video,
                         **kw)


def shaped(n_vo, group_size, correct=None, config=None, **kw):
    """(reward per sample, {log key: contributions}) of every term, as the agent and the controller add them."""
    config = config or RewardConfig()
    correct = correct if correct is not None else [0.0] * len(n_vo)
    outcomes = [outcome(n, correct=c, **{k: v[i] for k, v in kw.items()})
                for i, (n, c) in enumerate(zip(n_vo, correct))]
    per_sample = [sample_rewards(o, config.active()) for o in outcomes]
    terms = {key: np.array([s[key] for s in per_sample]) for key in per_sample[0]}
    terms.update(group_rewards(outcomes, group_size, config.active()))
    return sum(terms.values()), terms


def test_paper_worked_example_max_bonus():
    # 8 samples, exactly one uses pixel-space reasoning with one operation: RaPR = 1/8
    total, terms = shaped([1, 0, 0, 0, 0, 0, 0, 0], 8)
    assert terms["reward/curiosity"][0] == pytest.approx(0.5 * (0.3 - 1 / 8)) == pytest.approx(0.0875)
    assert terms["reward/curiosity"][1:].tolist() == [0.0] * 7  # 1_PR(y) = 0: no bonus for text-only responses
    assert terms["reward/efficiency"].tolist() == [0.0] * 8
    assert total[0] == pytest.approx(0.0875)


def test_penalty_is_minus_beta_per_operation_beyond_the_first():
    total, terms = shaped([1, 2, 3, 5], 4, correct=[1.0] * 4)  # RaPR = 1 >= H: no bonus
    assert terms["reward/curiosity"].tolist() == [0.0] * 4
    assert terms["reward/efficiency"] == pytest.approx([0.0, -0.05, -0.10, -0.20])
    assert total == pytest.approx([1.0, 0.95, 0.90, 0.80])


def test_bonus_stops_at_threshold_and_groups_are_independent():
    # group 1: RaPR = 2/8 < 0.3 -> bonus 0.5*(0.05)=0.025 ; group 2: RaPR = 3/8 >= 0.3 -> no bonus
    _, terms = shaped([1, 1, 0, 0, 0, 0, 0, 0] + [1, 1, 1, 0, 0, 0, 0, 0], 8)
    assert terms["reward/curiosity"][:2] == pytest.approx([0.025, 0.025])
    assert terms["reward/curiosity"][8:].tolist() == [0.0] * 8


def test_reference_code_variant_reproduces_official_constants():
    reference = RewardConfig(settings={"curiosity": {"weight": 1.0, "variant": "reference_code"},
                                       "efficiency": {"variant": "reference_code", "free_operations": 1}})
    n_vo = [1, 0, 0, 0, 0, 0, 0, 0]
    _, image = shaped(n_vo, 8, config=reference, is_video=[False] * 8)
    _, video = shaped(n_vo, 8, config=reference, is_video=[True] * 8)
    rapr = 1 / 8
    assert image["reward/curiosity"][0] == pytest.approx(max(0.3 - rapr, 0) / 2.0 / rapr * 0.25) == pytest.approx(0.175)
    assert video["reward/curiosity"][0] == pytest.approx(max(0.3 - rapr, 0) / 1.5 / rapr * 0.25)
    _, terms = shaped([0, 1, 2, 4], 4, config=reference)  # penalty -0.05*(ncall-1), only when ncall > 0
    assert terms["reward/efficiency"] == pytest.approx([0.0, 0.0, -0.05, -0.15])
    _, none = shaped([0, 0, 0, 0], 4, config=reference)  # no pixel reasoning: no bonus, no division by zero
    assert none["reward/curiosity"].tolist() == [0.0] * 4


def test_failed_or_malformed_calls_earn_no_bonus_by_default():
    """1_PR(y) counts responses whose operations showed the model pixels: a response whose only call was
    malformed (n_vo = 1, nothing executed) read an error message and answered from text."""
    executed = [True, False] + [False] * 6
    n_vo = [1, 1, 0, 0, 0, 0, 0, 0]
    _, terms = shaped(n_vo, 8, executed=executed)
    assert terms["reward/curiosity"][0] == pytest.approx(0.0875) and terms["reward/curiosity"][1] == 0.0
    assert terms["reward/efficiency"].tolist() == [0.0] * 8  # n_vo (failed calls included) still drives the penalty
    requested = RewardConfig(settings={"curiosity": {"pixel_reasoning": "requested"}})  # the official counting
    _, terms = shaped(n_vo, 8, config=requested, executed=executed)
    assert terms["reward/curiosity"][:2] == pytest.approx([0.025, 0.025])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.integers(0, 6), min_size=n, max_size=n),
    st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n))))
def test_paper_formula_properties(case):
    n, n_vo, r = case
    total, terms = shaped(n_vo, n, correct=r)
    rapr = np.mean([k > 0 for k in n_vo])
    for i in range(n):
        assert terms["reward/curiosity"][i] == pytest.approx(0.5 * max(0.3 - rapr, 0) * (n_vo[i] > 0))
        assert terms["reward/efficiency"][i] == pytest.approx(0.05 * min(1 - n_vo[i], 0))
        assert total[i] == pytest.approx(r[i] + terms["reward/curiosity"][i] + terms["reward/efficiency"][i])


@pytest.mark.parametrize("config, message", [
    (dict(settings={"curiosity": {"weight": -1}}), "rewards.settings.curiosity: weight=-1"),
    (dict(settings={"curiosity": {"rapr_threshold": 1.5}}), "rapr_threshold .H. = 1.5"),
    (dict(settings={"efficiency": {"free_operations": -1}}), "free_operations .N. = -1"),
    (dict(settings={"curiosity": {"variant": "paperish"}}), "variant='paperish'"),
    (dict(settings={"curiosity": {"alpha": 0.5}}), "rewards.settings.curiosity.alpha: unknown key"),
    (dict(terms=("correctness", "novelty")), "unknown reward term 'novelty'.*modules"),
    (dict(terms=("correctness",), settings={"curiosity": {}}), "rewards.settings has .'curiosity'."),
])
def test_bad_config_is_refused_naming_the_field(config, message):
    with pytest.raises(ConfigError, match=message):
        RewardConfig(**config)


def test_incomplete_groups_and_bad_logs_are_refused():
    config = RewardConfig()
    with pytest.raises(ValueError, match="complete groups"):
        group_rewards([outcome()] * 6, 4, config.active())
    with pytest.raises(DataError, match="lack \\['num_images'"):
        SampleOutcome.from_logs({"correct": 1.0, "num_operations": 1.0, "num_operation_errors": 0.0})


def test_outcomes_travel_as_logs():
    o = outcome(n_vo=2, correct=1.0, errors=1, is_video=True)
    assert SampleOutcome.from_logs(o.to_logs()) == o
    assert set(o.to_logs()) == set(SampleOutcome.LOG_KEYS)


def test_a_term_is_one_file_named_in_config():
    config = RewardConfig(terms=("correctness", "curiosity", "efficiency", "failed_call_penalty"),
                          settings={"failed_call_penalty": {"max_penalized": 2}}, modules=(EXAMPLE,))
    assert "failed_call_penalty" in registered_rewards()
    rewards = sample_rewards(outcome(n_vo=4, errors=3, correct=1.0), config.active())
    assert rewards == pytest.approx({"reward/correctness": 1.0, "reward/efficiency": -0.15,
                                     "reward/failed_call_penalty": -0.1})
    assert config.to_dict()["settings"]["failed_call_penalty"] == {"weight": 0.05, "max_penalized": 2}
    with pytest.raises(ConfigError, match="max_penalized=0 must be >= 1"):
        RewardConfig(terms=("failed_call_penalty",), settings={"failed_call_penalty": {"max_penalized": 0}},
                     modules=(EXAMPLE,))

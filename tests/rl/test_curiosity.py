"""Curiosity-driven reward (paper Eq. 10) and the official code's variant, on the paper's numbers and edge cases."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel_reasoner.curiosity import CuriosityConfig, shape_rewards
from pixel_reasoner.errors import ConfigError


def shape(rewards, num_operations, *args, **kwargs):
    """`shape_rewards` for samples whose requested operations all executed."""
    return shape_rewards(rewards, num_operations, *args, executed=np.asarray(num_operations) > 0, **kwargs)


def test_paper_worked_example_max_bonus():
    # 8 samples, exactly one uses pixel-space reasoning with one operation: RaPR = 1/8
    n_vo = [1, 0, 0, 0, 0, 0, 0, 0]
    shaped = shape([0.0] * 8, n_vo, group_size=8)
    assert shaped.rapr.tolist() == [0.125]
    assert shaped.bonus[0] == pytest.approx(0.5 * (0.3 - 1 / 8))
    assert shaped.bonus[0] == pytest.approx(0.0875)
    assert shaped.bonus[1:].tolist() == [0.0] * 7  # 1_PR(y) = 0: no bonus for text-only responses
    assert shaped.penalty.tolist() == [0.0] * 8
    assert shaped.rewards[0] == pytest.approx(0.0875)


def test_penalty_is_minus_beta_per_operation_beyond_the_first():
    n_vo = [1, 2, 3, 5]
    shaped = shape([1.0] * 4, n_vo, group_size=4)  # RaPR = 1 >= H: no bonus
    assert shaped.bonus.tolist() == [0.0] * 4
    assert shaped.penalty == pytest.approx([0.0, -0.05, -0.10, -0.20])
    assert shaped.rewards == pytest.approx([1.0, 0.95, 0.90, 0.80])


def test_bonus_stops_at_threshold_and_groups_are_independent():
    # group 1: RaPR = 2/8 < 0.3 -> bonus 0.5*(0.05)=0.025 ; group 2: RaPR = 3/8 >= 0.3 -> no bonus
    g1 = [1, 1, 0, 0, 0, 0, 0, 0]
    g2 = [1, 1, 1, 0, 0, 0, 0, 0]
    shaped = shape(np.zeros(16), g1 + g2, group_size=8)
    assert shaped.rapr == pytest.approx([0.25, 0.375])
    assert shaped.bonus[:2] == pytest.approx([0.025, 0.025])
    assert shaped.bonus[8:].tolist() == [0.0] * 8


def test_no_pixel_reasoning_in_group_gives_no_bonus_and_no_division_by_zero():
    shaped = shape([1.0, 0.0, 1.0, 0.0], [0, 0, 0, 0], group_size=4,
                           config=CuriosityConfig(variant="reference_code"))
    assert shaped.rapr.tolist() == [0.0]
    assert shaped.bonus.tolist() == [0.0] * 4 and shaped.penalty.tolist() == [0.0] * 4
    assert np.isfinite(shaped.rewards).all()


def test_reference_code_variant_reproduces_official_constants():
    cfg = CuriosityConfig(variant="reference_code")
    n_vo = [1, 0, 0, 0, 0, 0, 0, 0]
    image = shape([0.0] * 8, n_vo, 8, cfg, is_video=[False] * 8)
    video = shape([0.0] * 8, n_vo, 8, cfg, is_video=[True] * 8)
    rapr = 1 / 8
    assert image.bonus[0] == pytest.approx(max(0.3 - rapr, 0) / 2.0 / rapr * 0.25)  # 0.175
    assert video.bonus[0] == pytest.approx(max(0.3 - rapr, 0) / 1.5 / rapr * 0.25)
    assert image.bonus[0] == pytest.approx(0.175)
    # penalty -0.05*(ncall-1), only when ncall > 0
    shaped = shape([0.0] * 4, [0, 1, 2, 4], 4, cfg)
    assert shaped.penalty == pytest.approx([0.0, 0.0, -0.05, -0.15])


def test_disabled_passes_rewards_through_but_still_reports():
    shaped = shape([1.0, 0.0, 0.0, 0.0], [1, 0, 0, 3], 4, CuriosityConfig(enabled=False))
    assert shaped.rewards.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert shaped.rapr.tolist() == [0.5]


def test_stats_uniform_groups_before_and_after_shaping():
    # group 1: all wrong, RaPR 1/4 -> the bonus breaks uniformity; group 2: all right, no ops -> uniform
    shaped = shape([0, 0, 0, 0, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0, 0, 0], 4)
    stats = shaped.stats()
    assert stats["uniform_group_ratio_correctness"] == 1.0
    assert stats["uniform_group_ratio"] == 0.5
    assert stats["bonus_mean"] == pytest.approx(0.5 * 0.05 / 8)
    assert stats["rapr_mean"] == pytest.approx(0.125)


@pytest.mark.parametrize("kwargs", [dict(alpha=-1), dict(beta=-0.1), dict(rapr_threshold=1.5),
                                    dict(free_operations=-1), dict(variant="paperish")])
def test_bad_config_is_refused_with_the_field_named(kwargs):
    with pytest.raises(ConfigError) as err:
        CuriosityConfig(**kwargs)
    assert any(k in str(err.value) for k in list(kwargs) + ["H", "N"])


def test_incomplete_groups_and_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="complete groups"):
        shape_rewards([0.0] * 6, [0] * 6, group_size=4)
    with pytest.raises(ValueError, match="non-negative integers"):
        shape_rewards([0.0] * 2, [0, -1], group_size=2)
    with pytest.raises(ValueError, match="non-finite"):
        shape_rewards([0.0, float("nan")], [0, 0], group_size=2)
    with pytest.raises(ValueError, match="num_operations has"):
        shape_rewards([0.0, 0.0], [0], group_size=2)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.integers(0, 6), min_size=n, max_size=n),
    st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n))))
def test_paper_formula_properties(case):
    n, n_vo, r = case
    shaped = shape(r, n_vo, n)
    cfg = CuriosityConfig()
    rapr = np.mean([k > 0 for k in n_vo])
    for i in range(n):
        expected_bonus = cfg.alpha * max(cfg.rapr_threshold - rapr, 0) * (n_vo[i] > 0)
        expected_penalty = cfg.beta * min(cfg.free_operations - n_vo[i], 0)
        assert shaped.bonus[i] == pytest.approx(expected_bonus)
        assert shaped.penalty[i] == pytest.approx(expected_penalty)
        assert 0 <= shaped.bonus[i] <= cfg.alpha * cfg.rapr_threshold
        assert shaped.penalty[i] <= 0


def test_failed_or_malformed_calls_earn_no_bonus_by_default():
    """1_PR(y) counts responses whose operations showed the model pixels: a response whose only call was
    malformed (n_vo = 1, nothing executed) read an error message and answered from text."""
    n_vo = [1, 1, 0, 0, 0, 0, 0, 0]
    executed = [True, False, False, False, False, False, False, False]
    shaped = shape_rewards([0.0] * 8, n_vo, group_size=8, executed=executed)
    assert shaped.rapr.tolist() == [0.125]  # RaPR = E[1_PR] with the same indicator
    assert shaped.bonus[0] == pytest.approx(0.0875) and shaped.bonus[1] == 0.0
    assert shaped.penalty.tolist() == [0.0] * 8  # n_vo (failed calls included) still drives the penalty
    assert shaped.stats()["failed_calls_only_share"] == pytest.approx(1 / 8)
    requested = shape_rewards([0.0] * 8, n_vo, group_size=8, executed=executed,
                              config=CuriosityConfig(pixel_reasoning="requested"))  # the official code's counting
    assert requested.rapr.tolist() == [0.25] and requested.bonus[:2] == pytest.approx([0.025, 0.025])
    with pytest.raises(ValueError, match="executed"):
        shape_rewards([0.0] * 8, n_vo, group_size=8)
    with pytest.raises(ConfigError, match="pixel_reasoning"):
        CuriosityConfig(pixel_reasoning="attempted")

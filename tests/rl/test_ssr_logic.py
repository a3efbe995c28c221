"""Selective sample replay as pure logic: batch sizes, priorities, buffer, and steps without signal."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel_reasoner.errors import ConfigError
from pixel_reasoner.ssr import ReplayBuffer, SelectiveSampleReplay, SSRConfig, draw_proportional, target_size


def items_of(step, n):
    return [f"s{step}-{i}" for i in range(n)]


def test_target_size_is_a_multiple_of_the_train_batch():
    assert target_size(4096, 256, 0.5) == 2048  # the paper's scale: half of 512 queries x 8
    assert target_size(100, 16, 0.5) == 48
    assert target_size(8, 16, 0.5) == 16  # never below one train batch
    assert target_size(64, 16, 1.0) == 64


def test_all_uniform_first_step_is_skipped_with_a_warning(caplog):
    replay = SelectiveSampleReplay(SSRConfig(), rollout_size=8, train_batch_size=4)
    sel = replay.select(items_of(1, 8), np.zeros(8))
    assert sel.skipped and sel.items == [] and "skipping" in sel.warning
    assert sel.stats["skipped_step"] == 1.0 and sel.stats["buffer_size"] == 0
    assert "skipping the policy update" in caplog.text


def test_uniform_step_after_informative_ones_trains_on_replays():
    replay = SelectiveSampleReplay(SSRConfig(), rollout_size=8, train_batch_size=4)
    first = replay.select(items_of(1, 8), [1, -1, 0, 0, 0, 0, 0, 0])
    assert first.items[:2] == ["s1-0", "s1-1"] or set(first.items[:2]) == {"s1-0", "s1-1"}
    assert len(first.items) == 4  # topped up by repeating this step's informative samples
    second = replay.select(items_of(2, 8), np.zeros(8))
    assert not second.skipped and len(second.items) == 4
    assert all(second.replayed) and all(second.from_earlier_step)
    assert set(second.items) <= {"s1-0", "s1-1"}
    assert "no sample with non-zero advantage" in second.warning


def test_fresh_informative_first_then_replays_from_earlier_steps_only():
    replay = SelectiveSampleReplay(SSRConfig(), rollout_size=16, train_batch_size=4)  # target 8
    replay.select(items_of(1, 16), [1.0] * 6 + [0.0] * 10)
    sel = replay.select(items_of(2, 16), [0.5, 0.5, 0.5] + [0.0] * 13)
    assert len(sel.items) == 8
    fresh = [it for it, rep in zip(sel.items, sel.replayed) if not rep]
    replayed = [it for it, rep in zip(sel.items, sel.replayed) if rep]
    assert sorted(fresh) == ["s2-0", "s2-1", "s2-2"]
    assert len(replayed) == 5 and len(set(replayed)) == 5  # without replacement while the buffer allows
    assert all(it.startswith("s1-") for it in replayed)
    assert sel.stats["replayed_share"] == pytest.approx(5 / 8)
    assert sel.stats["buffer_size"] == 9


def test_more_informative_than_target_keeps_overflow_in_buffer():
    replay = SelectiveSampleReplay(SSRConfig(), rollout_size=16, train_batch_size=4)
    sel = replay.select(items_of(1, 16), np.linspace(0.1, 1.6, 16))
    assert len(sel.items) == 8 and not any(sel.replayed)
    assert len(replay.buffer) == 16
    nxt = replay.select(items_of(2, 16), np.zeros(16))
    assert len(nxt.items) == 8 and all(nxt.from_earlier_step)


def test_capacity_evicts_oldest_first_and_reset_clears():
    replay = SelectiveSampleReplay(SSRConfig(capacity=4), rollout_size=8, train_batch_size=4)
    replay.select(items_of(1, 8), [1.0] * 8)
    assert [e.item for e in replay.buffer.entries()] == items_of(1, 8)[4:]
    resetting = SelectiveSampleReplay(SSRConfig(reset_every_steps=1), rollout_size=8, train_batch_size=4)
    resetting.select(items_of(1, 8), [1.0] * 8)
    sel = resetting.select(items_of(2, 8), [1.0] + [0.0] * 7)
    assert not any(sel.from_earlier_step)  # the paper's "buffer persists for one episode" reading
    assert set(sel.items) == {"s2-0"}


def test_replay_probability_is_proportional_to_abs_advantage():
    rng = np.random.default_rng(0)
    counts = np.zeros(3)
    for _ in range(6000):
        counts[draw_proportional(np.array([1.0, 3.0, 6.0]), 1, rng)[0]] += 1
    assert counts / counts.sum() == pytest.approx([0.1, 0.3, 0.6], abs=0.02)
    # through SSR: |advantage| of the buffered samples sets how often they are replayed
    hits = {"s1-0": 0, "s1-1": 0}
    for seed in range(400):
        replay = SelectiveSampleReplay(SSRConfig(seed=seed), rollout_size=4, train_batch_size=1)  # target 2
        replay.select(items_of(1, 4), [-0.2, 1.8, 0.0, 0.0])  # both fresh used; buffer: s1-0 (0.2), s1-1 (1.8)
        sel = replay.select(items_of(2, 4), [0.3, 0.0, 0.0, 0.0])  # one fresh + one replay
        hits[[it for it, old in zip(sel.items, sel.from_earlier_step) if old][0]] += 1
    assert hits["s1-1"] / 400 == pytest.approx(0.9, abs=0.05)


def test_draw_proportional_repeats_whole_buffer_when_more_are_needed():
    picks = draw_proportional(np.array([1.0, 1.0, 2.0]), 7, np.random.default_rng(1))
    assert len(picks) == 7 and np.bincount(picks, minlength=3).min() >= 2


@pytest.mark.parametrize("kwargs", [dict(capacity=0), dict(batch_fraction=0.0), dict(batch_fraction=1.5),
                                    dict(stale_logprobs="refresh"), dict(reset_every_steps=-1),
                                    dict(min_abs_advantage=-1)])
def test_bad_config_is_refused(kwargs):
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        SSRConfig(**kwargs)


def test_buffer_rejects_zero_priority():
    with pytest.raises(ValueError, match="priority"):
        ReplayBuffer(4).add(["x"], [0.0], step=1)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 4), st.integers(1, 8),
       st.lists(st.lists(st.sampled_from([0.0, 0.0, 0.5, -1.0, 2.0]), min_size=32, max_size=32), min_size=1,
                max_size=5))
def test_invariants_over_random_steps(micro, capacity_mult, steps):
    train_batch = 2 * micro
    rollout = 32
    replay = SelectiveSampleReplay(SSRConfig(capacity=4 * capacity_mult), rollout, train_batch)
    seen_informative = set()
    for k, adv in enumerate(steps):
        items = items_of(k, rollout)
        sel = replay.select(items, adv)
        informative_now = {it for it, a in zip(items, adv) if a != 0}
        seen_informative |= informative_now
        assert len(sel.items) in (0, replay.target)
        assert len(sel.items) % train_batch == 0
        assert set(sel.items) <= seen_informative  # zero-advantage samples are never trained on
        assert sel.skipped == (not seen_informative)  # the buffer (never reset here) keeps earlier signal
        assert len(replay.buffer) <= 4 * capacity_mult
        fresh = [it for it, rep in zip(sel.items, sel.replayed) if not rep]
        assert len(fresh) == len(set(fresh)) and set(fresh) <= informative_now


def test_buffer_honours_a_byte_cap_oldest_first():
    buffer = ReplayBuffer(capacity=100, max_bytes=1000)
    buffer.add(["a", "b", "c"], [1.0, 1.0, 1.0], step=1, sizes=[400, 400, 100])
    assert len(buffer) == 3 and buffer.bytes == 900
    evicted = buffer.add(["d"], [1.0], step=2, sizes=[300])  # 1200 > 1000: the oldest goes
    assert [e.item for e in buffer.entries()] == ["b", "c", "d"] and buffer.bytes == 800 and evicted == 1
    buffer.add(["huge"], [1.0], step=3, sizes=[5000])  # larger than the cap on its own: never kept
    assert buffer.bytes <= 1000 and "huge" not in [e.item for e in buffer.entries()]
    with pytest.raises(ValueError, match="sizes"):
        buffer.add(["e"], [1.0], step=4, sizes=[1, 2])


def test_replay_reports_buffer_bytes_and_byte_evictions():
    replay = SelectiveSampleReplay(SSRConfig(max_bytes=2500), rollout_size=8, train_batch_size=4)
    sel = replay.select(items_of(1, 8), [1.0] * 8, sizes=[1000.0] * 8)
    assert sel.stats["buffer_size"] == 2 and sel.stats["buffer_bytes"] == 2000
    assert sel.stats["buffer_evicted_for_bytes"] == 6
    uncapped = SelectiveSampleReplay(SSRConfig(max_bytes=None), rollout_size=8, train_batch_size=4)
    assert uncapped.select(items_of(1, 8), [1.0] * 8, sizes=[1000.0] * 8).stats["buffer_size"] == 8
    with pytest.raises(ConfigError, match="max_bytes"):
        SSRConfig(max_bytes=0)


def test_state_dict_continues_the_replay_and_applies_the_new_caps():
    original = SelectiveSampleReplay(SSRConfig(), rollout_size=16, train_batch_size=4)
    original.select(items_of(1, 16), [1.0] * 6 + [0.0] * 10)
    original.select(items_of(2, 16), [0.5] * 3 + [0.0] * 13)
    state = original.state_dict()
    resumed = SelectiveSampleReplay(SSRConfig(), rollout_size=16, train_batch_size=4)
    resumed.load_state_dict(state)
    later = [0.5, 0.0] + [0.0] * 14
    a, b = original.select(items_of(3, 16), later), resumed.select(items_of(3, 16), later)
    assert a.items == b.items and a.from_earlier_step == b.from_earlier_step and sum(b.from_earlier_step) == 7
    smaller = SelectiveSampleReplay(SSRConfig(capacity=4), rollout_size=16, train_batch_size=4)
    smaller.load_state_dict(state)  # a resumed run given a smaller buffer keeps the newest samples
    assert [e.item for e in smaller.buffer.entries()] == ["s1-5", "s2-0", "s2-1", "s2-2"]
    assert smaller.step == 2

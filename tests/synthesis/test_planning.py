"""Trajectory-type planning: Table 2's proportions over 1,000 synthetic items, the text-only share, determinism,
and fallbacks when the geometry leaves no room (pure logic, no server)."""
import random
from collections import Counter

import pytest

from data_synthesis.config import SelfCorrectionConfig
from data_synthesis.self_correction import TEXT_ONLY, choose_route, plan_image, plan_video, rng_for

N = 1000
TOLERANCE = 0.05  # > 3 standard deviations of a share estimated from 1,000 draws


def test_image_and_video_proportions_match_table_2():
    config = SelfCorrectionConfig()
    for is_video, shares in ((False, config.image), (True, config.video)):
        counts = Counter(choose_route(0, f"item-{i}", is_video, 0.0, config) for i in range(N))
        assert set(counts) <= set(shares)
        for kind, share in shares.items():
            assert abs(counts[kind] / N - share) < TOLERANCE, (kind, counts)


def test_text_only_share_and_custom_proportions():
    config = SelfCorrectionConfig(image={"single_pass": 0.5, "recrop_once": 0.5})
    routes = Counter(choose_route(3, f"q{i}", False, 2000 / 7500, config) for i in range(N))
    assert abs(routes[TEXT_ONLY] / N - 2000 / 7500) < TOLERANCE
    rest = N - routes[TEXT_ONLY]
    assert abs(routes["recrop_once"] / rest - 0.5) < TOLERANCE and set(routes) == {TEXT_ONLY, "single_pass",
                                                                                  "recrop_once"}


def test_routes_depend_only_on_seed_and_item_id():
    config = SelfCorrectionConfig()
    ids = [f"x{i}" for i in range(200)]
    first = [choose_route(7, i, False, 0.25, config) for i in ids]
    assert first == [choose_route(7, i, False, 0.25, config) for i in reversed(ids)][::-1]
    assert first != [choose_route(8, i, False, 0.25, config) for i in ids]


def test_realised_proportions_over_1000_items_with_geometry():
    """Draw types and plan wrong operations for 1,000 items with realistic reference boxes: the realised kinds keep
    Table 2's shares up to the counted fallbacks, and every plan has the right number of wrong operations."""
    config = SelfCorrectionConfig()
    planned, realised, fallbacks = Counter(), Counter(), Counter()
    expected_wrong = {"single_pass": 0, "recrop_once": 1, "recrop_twice": 2, "further_zoom_in": 1}
    for i in range(N):
        rng = random.Random(i)
        width, height = rng.randint(800, 2600), rng.randint(600, 2000)
        w, h = rng.randint(40, width // 4), rng.randint(40, height // 4)
        x, y = rng.randint(0, width - w), rng.randint(0, height - h)
        kind = choose_route(0, f"img-{i}", False, 0.0, config)
        plan = plan_image(kind, rng_for(0, f"img-{i}", "operations"), (width, height), (x, y, x + w, y + h),
                          (0.1 * width + 2, 0.1 * height + 2), config, "the sign")
        planned[plan.planned_type] += 1
        realised[plan.trajectory_type] += 1
        if plan.trajectory_type != plan.planned_type:
            fallbacks[plan.planned_type] += 1
            assert plan.fallback_reason
        assert len(plan.wrong) == expected_wrong[plan.trajectory_type] == len(plan.recovery_texts)
        assert all("the sign" in t or "The sign" in t for t in plan.recovery_texts)
    fallback_share = sum(fallbacks.values()) / N
    assert fallback_share < 0.05, fallbacks
    for kind, share in config.image.items():
        assert abs(planned[kind] / N - share) < TOLERANCE, (kind, planned)
        assert abs(realised[kind] / N - share) < TOLERANCE + fallback_share, (kind, realised, fallbacks)


def test_video_reselect_plan_and_fallback():
    config = SelfCorrectionConfig()
    plan = plan_video("reselect", random.Random(0), 16, [5, 6, 7], config, "")
    assert plan.trajectory_type == "reselect" and not set(plan.wrong[0].frames) & {5, 6, 7}
    assert config.templates.default_target_video in plan.recovery_texts[0]
    full = plan_video("reselect", random.Random(0), 4, [1, 2, 3, 4], config, "x")
    assert full.trajectory_type == "single_pass" and full.planned_type == "reselect" and full.fallback_reason


def test_invalid_proportions_are_rejected_with_the_field_named():
    from pixel_reasoner.errors import ConfigError

    with pytest.raises(ConfigError, match="sum to 1"):
        SelfCorrectionConfig(image={"single_pass": 0.5, "recrop_once": 0.2})
    with pytest.raises(ConfigError, match="unknown trajectory type"):
        SelfCorrectionConfig(video={"single_pass": 0.5, "recrop_once": 0.5})


def test_further_zoom_in_targets_the_over_large_crop_unless_configured_otherwise():
    reference, size, margin = (400, 300, 460, 350), (1600, 1200), (162, 122)
    plan = plan_image("further_zoom_in", random.Random(0), size, reference, margin, SelfCorrectionConfig(), "x")
    assert plan.trajectory_type == "further_zoom_in" and plan.correct_target == 2
    original = SelfCorrectionConfig(zoom_in_target="original")
    assert plan_image("further_zoom_in", random.Random(0), size, reference, margin, original, "x").correct_target == 1


def test_a_seed_s_wrong_boxes_are_where_the_re_crops_go():
    """The re-crop types draw their wrong crops from the seed's `wrong_boxes` (each at most once) instead of random
    boxes; with too few of them the type falls back to a single pass and says why."""
    config = SelfCorrectionConfig()
    reference, cells = (112, 0, 224, 112), [(0, 0, 112, 112), (224, 0, 336, 112), (336, 0, 448, 112)]
    drawn = set()
    for i in range(30):
        plan = plan_image("recrop_twice", random.Random(i), (448, 112), reference, (6, 6), config, "x", cells)
        boxes = [w.box for w in plan.wrong]
        assert plan.trajectory_type == "recrop_twice" and len(set(boxes)) == 2 and set(boxes) <= set(cells)
        drawn |= set(boxes)
    assert drawn == set(cells)
    plan = plan_image("recrop_twice", random.Random(0), (448, 112), reference, (6, 6), config, "x", cells[:1])
    assert plan.trajectory_type == "single_pass" and plan.fallback_reason == "the seed's wrong_boxes ran out"
    random_box = plan_image("recrop_once", random.Random(0), (448, 112), reference, (6, 6), config, "x").wrong[0].box
    assert random_box not in cells  # without them: a random box that misses the reference

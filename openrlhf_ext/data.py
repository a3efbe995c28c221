"""Build OpenRLHF prompt datasets for RL: `python -m openrlhf_ext.data convert --input X --output Y.jsonl`.

Inputs
- The released `PixelReasoner-RL-Data` parquet: columns `question`, `image` (a list of paths; a video's frames
  when `is_video`), `is_video`, `qid` ("<bench>-<id>"), `answer`. Choices, when a question has them, are
  already written in the question text; they are parsed from it for scoring (not shown twice).
- Our trajectory JSONL (schema v1, `pixel_reasoner.trajectory`): `question`, `choices`, `answer`, `media`.
- Seed JSONL rows: `{"id" | "qid", "question", "answer", "choices"?, "scoring"?, "media": [{"type": "image",
  "path"} | {"type": "video", "path" | "frame_paths"}] | "images": [paths] | "image": path | "video": path}`.
Relative paths resolve against `--image-root` (default: the input file's directory); outputs hold absolute paths.

Output: one JSON object per line, in OpenRLHF's VLM prompt-dataset conventions:
    {"input": [{"role": "system", "content": [{"type": "text", "text": SYSTEM + TOOLS}]},
               {"role": "user", "content": [{"type": "image"}, ..., {"type": "text", "text": QUESTION + GUIDELINES}]}],
     "images": ["/abs/a.jpg", ...], "label": "{\\"answer\\": ...}", "qid": "vstar-12", "datasource": "vstar"}
Train with `--data.input_key input --data.label_key label --data.image_key images --data.apply_chat_template`.
The system turn carries the profile's `# Tools` block (OpenRLHF renders the chat template without `tools=`),
and there is one image part per image, or one video part for a video (its frame paths, or the video file, in
`images`: the agent shows it to the model as Qwen2.5-VL's video, as SFT and evaluation do). The label is the
JSON of `openrlhf_ext.labels.TaskLabel` (answer, scoring, choices, is_video, qid).

Every row is validated (question, answer, choices, media present and readable, duplicate ids); errors name
the row. By default any invalid row stops the conversion with the list of problems and nothing is written;
`--skip-invalid` writes the valid rows and puts the others, with their reasons, in a rejects file.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from PIL import Image
from tqdm import tqdm

from openrlhf_ext.labels import SCORING_KINDS, TaskLabel, normalize_answer
from pixel_reasoner.errors import DataError, OperationError
from pixel_reasoner.jsonl import jsonl_lines, write_jsonl
from pixel_reasoner.media import VIDEO_EXTENSIONS, smart_resize
from pixel_reasoner.protocol import ProtocolProfile, get_profile
from pixel_reasoner.protocol.chatml import tools_block
from pixel_reasoner.scoring import choice_letter

logger = logging.getLogger(__name__)

MEDIA_CHECKS = ("open", "exists", "none")
_CHOICE_LINE = re.compile(r"^\s*\(?([A-Z])\)?\s*[:.)]\s*(\S.*?)\s*$")


@dataclass
class ConvertOptions:
    """Options of one conversion (also the CLI flags)."""

    image_root: str | None = None  # relative media paths resolve here (default: the input file's directory)
    profile: str = "released"  # protocol profile: its tools, system prompt and guidelines are baked into prompts
    system_prompt: str | None = None  # replaces the profile's system prompt (the tools block is still appended)
    scoring: str = "auto"  # scoring of a row that names none; "auto" decides per row (and records it)
    check_media: str = "open"  # open: read image headers; exists: only check files exist; none: no checks
    skip_invalid: bool = False
    limit: int | None = None


@dataclass
class PromptRow:
    qid: str
    question: str  # the text shown (choices included)
    answer: Any
    choices: list[str] | None = None  # options for scoring (letters A, B, ...)
    scoring: str | None = None
    images: list[str] = field(default_factory=list)  # image paths, a video's frame paths, or [video file]
    is_video: bool = False


def split_choices(question: str) -> list[str] | None:
    """Options written in a question ("A: Lion" / "(B) Sheep" / "C. Tiger" lines, lettered from A), or None.

    The last run of at least two consecutive lines lettered A, B, C... counts."""
    best: list[str] = []
    run: list[str] = []
    for line in question.splitlines():
        m = _CHOICE_LINE.match(line)
        if m and m.group(1) == chr(ord("A") + len(run)):
            run.append(m.group(2))
            continue
        if len(run) >= 2:
            best = run
        run = [m.group(2)] if m and m.group(1) == "A" else []
    if len(run) >= 2:
        best = run
    return best or None


def released_rows(path: str) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    missing = sorted({"question", "image", "qid", "answer"} - set(table.column_names))
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; the released RL data has question, image, is_video, "
                        f"qid, answer (found {table.column_names})")
    for i, row in enumerate(table.to_pylist()):
        yield i, row


def jsonl_rows(path: str) -> Iterator[tuple[int, dict | DataError]]:
    for line in jsonl_lines(path):
        yield line.number - 1, line.value if line.error is None else DataError(line.error)


def from_released(row: dict) -> PromptRow:
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError("`question` is missing or empty")
    images = row.get("image")
    if isinstance(images, str):
        images = [images] if images else []
    if images is None:
        images = []
    if not isinstance(images, list) or not all(isinstance(p, str) and p for p in images):
        raise DataError(f"`image` must be a list of paths, got {images!r}")
    is_video = row.get("is_video") or False
    if not isinstance(is_video, bool):
        raise DataError(f"`is_video` must be true or false, got {is_video!r}")
    qid = row.get("qid")
    if qid is None or not str(qid).strip():
        raise DataError("`qid` is missing")
    choices = split_choices(question)
    answer = row.get("answer")
    if choices and not (isinstance(answer, str) and choice_letter(answer, choices)):
        choices = None  # lettered lines that the answer does not refer to are not options
    return PromptRow(str(qid), question, answer, choices, None, images, is_video)


def from_jsonl(row: dict, index: int) -> PromptRow:
    """A trajectory (schema v1) or a seed row."""
    qid = row.get("qid") or row.get("id") or f"row-{index}"
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError("`question` is missing or empty")
    choices = row.get("choices")
    if choices is not None and (not isinstance(choices, list) or not choices
                                or not all(isinstance(c, str) and c.strip() for c in choices)):
        raise DataError(f"`choices` must be a non-empty list of non-empty strings, got {choices!r}")
    images, is_video = _media(row)
    if row.get("is_video") is not None and bool(row["is_video"]) != is_video:
        raise DataError(f"`is_video` is {row['is_video']!r} but the media is {'a video' if is_video else 'images'}")
    if "kind" in row and "schema_version" not in row:  # a trajectory's `kind` was its type, not its scoring
        warnings.warn("the seed field `kind` is deprecated, use `scoring` (the old name is removed in the next "
                      "release)", FutureWarning, stacklevel=2)
    scoring = None if "schema_version" in row else row.get("scoring", row.get("kind"))
    if scoring is not None and scoring not in SCORING_KINDS:
        raise DataError(f"`scoring` is {scoring!r}; choose one of {SCORING_KINDS}")
    return PromptRow(str(qid), question, row.get("answer"), choices, scoring, images, is_video)


def _media(row: dict) -> tuple[list[str], bool]:
    if row.get("media"):
        media = row["media"]
        if not isinstance(media, list) or not all(isinstance(m, dict) for m in media):
            raise DataError("`media` must be a list of {\"type\": \"image\"|\"video\", ...} objects")
        videos = [m for m in media if m.get("type") == "video"]
        if videos:
            if len(media) != 1:
                raise DataError("a video row must have exactly one media item (the video)")
            frames = videos[0].get("frame_paths")
            if frames:
                return list(frames), True
            if not videos[0].get("path"):
                raise DataError("the video media item needs `path` or `frame_paths`")
            return [videos[0]["path"]], True
        bad = [m.get("type") for m in media if m.get("type") != "image" or not m.get("path")]
        if bad:
            raise DataError(f"`media` items must be images with a `path` or one video; got types {bad}")
        return [m["path"] for m in media], False
    if row.get("video"):
        video = row["video"]
        return (list(video), True) if isinstance(video, list) else ([video], True)
    images = row.get("images", row.get("image"))
    if images is None or images == "":
        return [], False
    return ([images] if isinstance(images, str) else list(images)), bool(row.get("is_video", False))


class Converter:
    """Turns validated rows into OpenRLHF prompt records."""

    def __init__(self, options: ConvertOptions, root: str):
        if options.scoring not in SCORING_KINDS:
            raise DataError(f"--scoring {options.scoring!r}: choose one of {SCORING_KINDS}")
        if options.check_media not in MEDIA_CHECKS:
            raise DataError(f"--check-media {options.check_media!r}: choose one of {MEDIA_CHECKS}")
        self.options = options
        self.root = root
        self.profile: ProtocolProfile = get_profile(options.profile)
        system = options.system_prompt if options.system_prompt is not None else self.profile.system_prompt
        self.system_text = system + tools_block(self.profile.tool_schemas())
        self.seen: dict[str, int] = {}

    def record(self, row: PromptRow, index: int) -> dict:
        first = self.seen.get(row.qid)
        if first is not None:
            raise DataError(f"duplicate qid {row.qid!r} (first at row {first})")
        images = [self._path(p) for p in row.images]
        is_file_video = row.is_video and len(images) == 1 and images[0].lower().endswith(VIDEO_EXTENSIONS)
        self._check_media(images, is_file_video)
        answer = tuple(normalize_answer(a, "answer") for a in row.answer) \
            if isinstance(row.answer, (list, tuple)) else normalize_answer(row.answer, "answer")
        choices = tuple(row.choices) if row.choices else None
        scoring = TaskLabel(answer, row.scoring, choices).resolved_scoring(self.options.scoring)
        label = TaskLabel(answer, scoring, choices, row.is_video, row.qid).validate()
        # choices given apart from the question are shown by the profile; choices parsed from it are there already
        shown_choices = row.choices if row.choices and not split_choices(row.question) else None
        text = self.profile.format_question(row.question, shown_choices)
        self.seen[row.qid] = index
        media = [{"type": "video"}] if row.is_video else [{"type": "image"}] * len(images)
        user = media + [{"type": "text", "text": text}]
        return {"input": [{"role": "system", "content": [{"type": "text", "text": self.system_text}]},
                          {"role": "user", "content": user}],
                "images": images, "label": label.to_json(), "qid": row.qid, "datasource": row.qid.split("-")[0]}

    def _path(self, path: str) -> str:
        if path.startswith("file://"):
            path = path[len("file://"):]
        return os.path.abspath(path if os.path.isabs(path) else os.path.join(self.root, path))

    def _check_media(self, paths: Sequence[str], is_file_video: bool) -> None:
        if self.options.check_media == "none":
            return
        for path in paths:
            if not os.path.isfile(path):
                raise DataError(f"media file not found: {path}" + (" (set --image-root?)" if self.options.image_root
                                                                    is None else ""))
            if self.options.check_media == "open" and not is_file_video:
                try:
                    with Image.open(path) as im:
                        width, height = im.size
                except (OSError, Image.DecompressionBombError) as e:
                    raise DataError(f"cannot read image {path}: {e}") from None
                try:
                    smart_resize(height, width, 784, 1 << 40)
                except OperationError as e:
                    raise DataError(f"image {path}: {e}") from None


@dataclass
class ConvertSummary:
    input: str
    output: str
    rows: int = 0
    written: int = 0
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    datasources: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    videos: int = 0
    images: int = 0
    rejects_path: str | None = None

    def to_dict(self) -> dict:
        return {k: (dict(v) if isinstance(v, Counter) else v) for k, v in self.__dict__.items()}

    def text(self) -> str:
        lines = [f"converted {self.input} -> {self.output}",
                 f"  rows {self.rows}, written {self.written}, rejected {self.rejected}"
                 + (f" (see {self.rejects_path})" if self.rejects_path and self.rejected else ""),
                 f"  media: {self.images} images, {self.videos} videos",
                 "  scoring kinds: " + ", ".join(f"{k} {n}" for k, n in self.kinds.most_common()),
                 "  sources: " + ", ".join(f"{k} {n}" for k, n in self.datasources.most_common(12))]
        if self.reasons:
            lines.append("  rejection reasons: " + "; ".join(f"{k} ({n})" for k, n in self.reasons.most_common()))
        return "\n".join(lines)


def convert(input_path: str, output_path: str, options: ConvertOptions | None = None) -> ConvertSummary:
    """Convert one file; raises DataError listing the invalid rows unless `options.skip_invalid`."""
    options = options or ConvertOptions()
    if not os.path.isfile(input_path):
        raise DataError(f"input file not found: {input_path}")
    root = options.image_root or os.path.dirname(os.path.abspath(input_path))
    converter = Converter(options, root)
    is_parquet = input_path.endswith(".parquet")
    rows = released_rows(input_path) if is_parquet else jsonl_rows(input_path)
    summary = ConvertSummary(input_path, output_path)
    records: list[dict] = []
    rejects: list[dict] = []
    for index, row in tqdm(rows, desc=f"convert {os.path.basename(input_path)}", unit="row", mininterval=1.0):
        if options.limit is not None and summary.rows >= options.limit:
            break
        summary.rows += 1
        try:
            if isinstance(row, DataError):
                raise row
            prompt_row = from_released(row) if is_parquet else from_jsonl(row, index)
            record = converter.record(prompt_row, index)
        except DataError as e:
            qid = (row.get("qid") or row.get("id")) if isinstance(row, dict) else None
            rejects.append({"row": index, "qid": qid, "reason": str(e)})
            summary.reasons[_reason_class(str(e))] += 1
            continue
        records.append(record)
        label = TaskLabel.parse(record["label"])
        summary.kinds[label.scoring] += 1
        summary.datasources[record["datasource"]] += 1
        summary.videos += int(prompt_row.is_video)
        summary.images += 0 if prompt_row.is_video else len(record["images"])
    summary.rejected = len(rejects)
    if rejects and not options.skip_invalid:
        shown = "\n".join(f"  row {r['row']}" + (f" (qid {r['qid']})" if r["qid"] else "") + f": {r['reason']}"
                          for r in rejects[:20])
        more = f"\n  ... and {len(rejects) - 20} more" if len(rejects) > 20 else ""
        raise DataError(f"{input_path}: {len(rejects)} of {summary.rows} rows are invalid; nothing was written. Fix "
                        f"them, or pass --skip-invalid to write the valid rows and a rejects file:\n{shown}{more}")
    _write_jsonl(output_path, records)
    if rejects:
        summary.rejects_path = output_path + ".rejects.jsonl"
        _write_jsonl(summary.rejects_path, rejects)
    summary.written = len(records)
    with open(output_path + ".summary.json", "w", encoding="utf-8") as f:
        json.dump(summary.to_dict(), f, indent=1)
    return summary


def _reason_class(message: str) -> str:
    """Group rejection messages for the summary (drop paths, values and row numbers)."""
    return re.split(r"[:(]", message, maxsplit=1)[0].strip()


def _write_jsonl(path: str, rows: Sequence[dict]) -> None:
    """Write atomically: an interrupted conversion never leaves a half-written dataset behind."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    write_jsonl(tmp, rows)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openrlhf_ext.data",
                                     description="Build OpenRLHF prompt datasets for Pixel Reasoner RL.")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="released RL parquet / trajectory or seed JSONL -> OpenRLHF prompt JSONL",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--input", required=True, help=".parquet (released RL data) or .jsonl (trajectories / seeds)")
    c.add_argument("--output", required=True, help="OpenRLHF prompt dataset (.jsonl)")
    defaults = ConvertOptions()
    c.add_argument("--image-root", default=None, help="directory relative media paths resolve against")
    c.add_argument("--profile", default=defaults.profile, help="protocol profile (default: %(default)s)")
    c.add_argument("--system-prompt", default=None, help="system prompt (default: the profile's)")
    c.add_argument("--scoring", "--kind", default=defaults.scoring, choices=SCORING_KINDS,
                   help="scoring of rows that name none (--kind: the old name)")
    c.add_argument("--check-media", default=defaults.check_media, choices=MEDIA_CHECKS)
    c.add_argument("--skip-invalid", action="store_true", help="write valid rows; invalid ones go to a rejects file")
    c.add_argument("--limit", type=int, default=None, help="convert only the first N rows")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    options = ConvertOptions(args.image_root, args.profile, args.system_prompt, args.scoring,
                             args.check_media, args.skip_invalid, args.limit)
    try:
        summary = convert(args.input, args.output, options)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(summary.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

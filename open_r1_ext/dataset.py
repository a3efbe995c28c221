"""From the recipe's data files to the training dataset: read, validate every row, apply the invalid-sample
policy, mix, and hand the trainer one JSON string per sample.

Validation runs over every row before any training step, so a bad row costs seconds, not a crashed run hours
in. Each problem names its file, row and the offending field or path; with `invalid_samples: error` the run
stops listing them, with `skip` they are left out and counted. Either way the full list goes to the
validation report (JSON) next to the run's outputs, with the run's pixel budgets and the `notes`: counts of
valid rows that were changed or could not be checked (`open_r1_ext.samples.NOTES`), each also logged once.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from pixel_reasoner.config import to_dict
from pixel_reasoner.errors import ConfigError, DataError

from open_r1_ext.config import SFTScriptArguments
from open_r1_ext.data import Problem, mix, read_data_file
from open_r1_ext.samples import IGNORED_MEDIA_KEY_NOTE, NOTES, SampleSpec, SampleValidator

logger = logging.getLogger(__name__)
PROBLEMS_SHOWN = 20  # in the exception text; the report holds all of them


@dataclass
class PreparedData:
    samples: list[SampleSpec]
    problems: list[Problem] = field(default_factory=list)
    files: list[dict] = field(default_factory=list)
    mixture: list[dict] = field(default_factory=list)
    policy: str = "error"
    max_length: int | None = None
    budgets: dict = field(default_factory=dict)  # the run's per-kind pixel budgets
    notes: dict[str, int] = field(default_factory=dict)  # NOTES key -> valid rows it applies to

    def report(self) -> dict:
        rows = sum(f["rows"] for f in self.files)
        invalid = sum(f["invalid_rows"] for f in self.files)
        return {"policy": self.policy, "max_length": self.max_length, "rows": rows, "valid_rows": rows - invalid,
                "invalid_rows": invalid, "skipped_rows": invalid if self.policy == "skip" else 0,
                "training_samples": len(self.samples), "tokens": token_stats(self.samples), "files": self.files,
                "mixture": self.mixture, "budgets": self.budgets, "notes": self.notes,
                "problems": [p.to_dict() for p in self.problems]}


def note_text(key: str) -> str:
    if key.startswith(IGNORED_MEDIA_KEY_NOTE):
        name = key[len(IGNORED_MEDIA_KEY_NOTE):]
        return (f"released rows whose media parts carry `{name}`, which is not honoured: images are shown at the "
                "run's pixel budgets, as in RL and eval")
    return NOTES[key]


def token_stats(samples: list[SampleSpec]) -> dict:
    """Sequence lengths of the training samples (mixture included): for memory and GPU-hour estimates."""
    lengths = sorted(s.tokens for s in samples)
    if not lengths:
        return {"total": 0}
    return {"total": sum(lengths), "mean": round(sum(lengths) / len(lengths), 1), "median": lengths[len(lengths) // 2],
            "max": lengths[-1]}


def prepare_samples(args: SFTScriptArguments, processor, max_length: int | None,
                    progress: bool = True) -> PreparedData:
    """Read and validate every row of every data file, then mix the valid samples. Problems are collected, not
    raised: `enforce_policy` decides (stop or skip) once they are all known."""
    if not args.data_files:
        raise ConfigError("no training data: set `data_files` in the recipe (or --data_files FILE ...)")
    validator = SampleValidator(processor, args.budgets(), max_length, args.profile, args.add_tools_to_released)
    valid_per_file: list[tuple[str, list[SampleSpec]]] = []
    prepared = PreparedData([], policy=args.invalid_samples, max_length=max_length, budgets=to_dict(args.budgets()))
    for path in args.data_files:
        rows, problems = read_data_file(path, args.image_root)
        total = len(rows) + len(problems)  # rows that could not even be parsed are problems already
        specs = []
        for row in tqdm(rows, desc=f"validating {os.path.basename(path)}", disable=not progress):
            spec, row_problems = validator.check(row)
            if spec is not None:
                specs.append(spec)
            problems.extend(row_problems)
        problems.sort(key=lambda p: p.index)
        prepared.problems.extend(problems)
        prepared.files.append({"source": path, "rows": total, "valid_rows": len(specs),
                               "invalid_rows": total - len(specs)})
        valid_per_file.append((path, specs))
    for problem in prepared.problems:
        logger.warning("invalid sample: %s", problem)
    prepared.notes = dict(sorted(validator.notes.items()))
    for key, count in prepared.notes.items():
        logger.warning("%d %s", count, note_text(key))
    prepared.samples, prepared.mixture = mix(valid_per_file, args.weights(), args.mixture_seed)
    return prepared


def enforce_policy(prepared: PreparedData, report_path: str | None) -> None:
    """Stop with every problem listed (policy `error`), or log what was skipped; never drop silently."""
    if report_path is not None:
        write_report(prepared, report_path)
    where = f" (full list: {report_path})" if report_path else ""
    if prepared.problems and prepared.policy == "error":
        shown = "\n".join(f"  - {p}" for p in prepared.problems[:PROBLEMS_SHOWN])
        more = len(prepared.problems) - PROBLEMS_SHOWN
        raise DataError(f"{prepared.report()['invalid_rows']} invalid row(s){where}:\n{shown}"
                        + (f"\n  ... and {more} more" if more > 0 else "")
                        + "\nFix the data, or set `invalid_samples: skip` to train without them (they are counted "
                          "in the validation report).")
    if prepared.problems:
        report = prepared.report()
        logger.warning("skipped %d invalid row(s) of %d%s", report["skipped_rows"], report["rows"], where)
    if not prepared.samples:
        raise DataError(f"no valid training samples in {[f['source'] for f in prepared.files]}{where}")


def write_report(prepared: PreparedData, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(prepared.report(), f, indent=2, ensure_ascii=False)


def to_train_dataset(samples: list[SampleSpec]):
    """A `datasets.Dataset` TRL accepts: one JSON string per sample (immune to Arrow's type unification) and the
    sample's image paths under `images`, the key TRL reads to treat the dataset as a vision dataset."""
    from datasets import Dataset

    return Dataset.from_dict({"sample": [s.to_json() for s in samples],
                              "images": [s.image_paths() for s in samples]})

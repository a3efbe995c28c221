"""The label of an RL prompt: what the correctness reward needs, carried through OpenRLHF as one JSON string.

OpenRLHF hands each sample's `label` (the dataset's `--data.label_key` column) to the agent untouched. Ours is
a JSON object so that scoring needs no guessing at run time:

    {"answer": "B", "scoring": "multiple_choice", "choices": ["Lion", "Sheep", "Tiger", "Elephant"],
     "is_video": false, "qid": "vstar-12"}

`answer` is a string (or a list of strings: any may match, e.g. ANLS ground truths); `scoring` is a scoring kind
of `pixel_reasoner.scoring`, or "paper": the official reward (`pixel_reasoner.paper_scoring`, the same rule
the paper's eval used; it reads the whole trajectory, compares with the answer as given, e.g. the option letter,
and accepts "15%" for "15", "1,000" for "1000") (absent: the rollout config's `scoring`); `choices` lists the
options of a multiple-choice question (their letters are A, B, ...); `is_video` says the sample's media is a video (its
frame list or a video file). A label that is not such a JSON object is taken as the answer itself. Labels written
before 0.2 said `kind` for `scoring`; they are read the same.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from pixel_reasoner.errors import DataError
from pixel_reasoner.paper_scoring import KIND as PAPER, paper_correct, solution_text
from pixel_reasoner.scoring import SCORERS, auto_scoring, choice_letter, parse_count, score

SCORING_KINDS = (*SCORERS, PAPER, "auto")


@dataclass(frozen=True)
class TaskLabel:
    answer: str | tuple[str, ...]
    scoring: str | None = None
    choices: tuple[str, ...] | None = None
    is_video: bool = False
    qid: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.answer, list):
            object.__setattr__(self, "answer", tuple(self.answer))
        if isinstance(self.choices, list):
            object.__setattr__(self, "choices", tuple(self.choices))

    @property
    def where(self) -> str:
        return f"label of {self.qid}" if self.qid else "label"

    def resolved_scoring(self, default: str = "auto") -> str:
        """The scoring kind with "auto" decided once (`pixel_reasoner.scoring.auto_scoring`)."""
        kind = self.scoring or default
        if kind != "auto":
            return kind
        return auto_scoring(list(self.answer) if isinstance(self.answer, tuple) else self.answer, self.choices)

    def validate(self, default: str = "auto") -> "TaskLabel":
        """Raise DataError unless the answer can be scored (checked before any generation)."""
        answers = list(self.answer) if isinstance(self.answer, tuple) else [self.answer]
        if not answers or any(not isinstance(a, str) or not a.strip() for a in answers):
            raise DataError(f"{self.where}: `answer` must be a non-empty string (or list of them), got {self.answer!r}")
        if self.choices is not None and (not self.choices or any(not isinstance(c, str) or not c.strip()
                                                                 for c in self.choices)):
            raise DataError(f"{self.where}: `choices` must be a non-empty list of non-empty strings, got "
                            f"{list(self.choices)!r}")
        kind = self.resolved_scoring(default)
        if kind not in (*SCORERS, PAPER):
            raise DataError(f"{self.where}: scoring kind {kind!r} is unknown; choose one of {SCORING_KINDS}")
        if kind == "multiple_choice":
            if not self.choices:
                raise DataError(f"{self.where}: a multiple-choice label needs `choices`")
            if choice_letter(answers[0], self.choices) is None:
                raise DataError(f"{self.where}: answer {answers[0]!r} is neither a letter A-"
                                f"{chr(ord('A') + len(self.choices) - 1)} nor the text of one of the "
                                f"{len(self.choices)} choices")
        if kind == "count" and parse_count(answers[0]) is None:
            raise DataError(f"{self.where}: counting answer {answers[0]!r} is not a number")
        return self

    def score(self, prediction: str | None, default: str = "auto") -> float:
        """Correctness of an extracted answer in [0, 1] (0 when the response stated none)."""
        if prediction is None:
            return 0.0
        answer = list(self.answer) if isinstance(self.answer, tuple) else self.answer
        return float(score(prediction, answer, self.resolved_scoring(default), self.choices))

    def reward(self, termination: str | None, answer: str | None, messages: Sequence[Mapping],
               default: str = "auto") -> float:
        """Correctness reward of a finished episode. "paper": the official rule on the whole trajectory whatever
        ended it (as the official RL scored every rollout); other kinds: the extracted answer, 0 unless the episode
        ended with an answer."""
        if self.resolved_scoring(default) == PAPER:
            answers = list(self.answer) if isinstance(self.answer, tuple) else self.answer
            return paper_correct(solution_text(messages, ended_with_end_of_turn=termination == "answer"), answers)
        return self.score(answer, default) if termination == "answer" else 0.0

    def to_json(self) -> str:
        d = asdict(self)
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items() if v is not None}
        return json.dumps(d, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any], where: str = "label") -> "TaskLabel":
        if "kind" in d:
            warnings.warn("the label field `kind` is deprecated, use `scoring` (the old name is removed in the next "
                          "release)", FutureWarning, stacklevel=2)
            d = {("scoring" if k == "kind" else k): v for k, v in d.items()}
        known = {"answer", "scoring", "choices", "is_video", "qid"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DataError(f"{where}: unknown label key(s) {unknown}; valid keys are {sorted(known)}")
        if "answer" not in d:
            raise DataError(f"{where}: missing `answer`")
        answer = d["answer"]
        answer = tuple(normalize_answer(a, where) for a in answer) if isinstance(answer, (list, tuple)) \
            else normalize_answer(answer, where)
        kind = d.get("scoring")
        if kind is not None and kind not in SCORING_KINDS:
            raise DataError(f"{where}: `scoring` is {kind!r}; choose one of {SCORING_KINDS}")
        choices = d.get("choices")
        if choices is not None and (isinstance(choices, str) or not isinstance(choices, Sequence)):
            raise DataError(f"{where}: `choices` must be a list of strings, got {choices!r}")
        is_video = d.get("is_video", False)
        if not isinstance(is_video, bool):
            raise DataError(f"{where}: `is_video` must be true or false, got {is_video!r}")
        qid = d.get("qid")
        return cls(answer, kind, tuple(choices) if choices is not None else None, is_video,
                   None if qid is None else str(qid))

    @classmethod
    def parse(cls, label: Any) -> "TaskLabel":
        """A label as OpenRLHF passes it: our JSON string, an already-decoded mapping, or a bare answer."""
        if isinstance(label, Mapping):
            return cls.from_mapping(label)
        if isinstance(label, str) and label.lstrip().startswith("{"):
            try:
                decoded = json.loads(label)
            except json.JSONDecodeError:
                decoded = None
            if isinstance(decoded, dict) and "answer" in decoded:
                where = f"label of {decoded['qid']}" if decoded.get("qid") else "label"
                return cls.from_mapping(decoded, where=where)
        return cls(normalize_answer(label, "label"))


def normalize_answer(value: Any, where: str) -> str:
    """An answer as a string: numbers are written plainly (3.0 -> "3"); missing/NaN/empty values are errors."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise DataError(f"{where}: the answer is missing")
    if isinstance(value, bool):
        raise DataError(f"{where}: the answer is a boolean ({value}); write it as text")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        raise DataError(f"{where}: the answer must be text or a number, got {type(value).__name__}")
    if not value.strip():
        raise DataError(f"{where}: the answer is empty")
    return value.strip()

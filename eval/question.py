"""One benchmark question as every loader produces it, independent of the file layout it came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pixel_reasoner.media import ImageSource, VideoSource


@dataclass
class Question:
    """A question with its media and ground truth.

    `choices` are in the order the source gives them (for V* annotation files: the correct option first);
    `answer` is an option letter of that order for multiple choice, a count, or a list of acceptable strings
    (InfoVQA). `None` means the split hides its answers (InfoVQA test). `target_boxes` are [x1, y1, x2, y2] in
    pixels of the first input image (V* only), for crop faithfulness.
    """

    id: str
    benchmark: str
    question: str
    answer: Any
    images: list[ImageSource] = field(default_factory=list)
    video: VideoSource | None = None
    choices: list[str] | None = None
    category: str | list[str] | None = None  # several (InfoVQA answer types): per-category metrics count each
    target_boxes: list[list[float]] | None = None
    meta: dict = field(default_factory=dict)

    @property
    def scoring(self) -> str:
        from eval.benchmarks.registry import get_benchmark

        return get_benchmark(self.benchmark).scoring

"""Template trajectories: the expert's analysis or the text-only answer composed from fixed texts and the ground
truth, without any model text. NOT the paper's method (see `TemplateConfig`): for smoke runs and for testing a
pipeline without a capable model. The trajectory is still composed and executed by the engine like any other, so
its format (tool calls, observations, masks, the boxed answer) is exactly the real one.
"""
from __future__ import annotations

from data_synthesis.config import TemplateConfig
from data_synthesis.expert import ExpertAnalysis
from data_synthesis.prompts import render
from data_synthesis.seeds import SeedItem
from pixel_reasoner.protocol import ProtocolProfile

DEFAULT_CHOICE_FORMAT = ProtocolProfile.choice_format  # "{letter}: {text}", as the built-in profiles list options


def ground_truth(item: SeedItem) -> str:
    """The answer the templates state: the ground truth (the first accepted text when there are several)."""
    return str(item.answer[0] if isinstance(item.answer, list) else item.answer)


def answer_text(item: SeedItem) -> str:
    """The ground truth in words: the text of the correct option (multiple choice), else the answer itself."""
    truth = ground_truth(item)
    if item.choices and len(truth) == 1 and 0 <= ord(truth) - ord("A") < len(item.choices):
        return item.choices[ord(truth) - ord("A")]
    return truth


def answer_option(item: SeedItem, choice_format: str) -> str:
    """The correct option as the question lists it (`choice_format` of the profile) and a line break; empty when
    the question has no options."""
    truth = ground_truth(item)
    if not item.choices or answer_text(item) == truth:
        return ""
    return choice_format.format(letter=truth, text=answer_text(item)) + "\n"


def _fields(item: SeedItem, config: TemplateConfig, choice_format: str) -> dict[str, str]:
    return {"question": (item.question or "").strip(), "medium": "video" if item.is_video else "image",
            "target": config.target_video if item.is_video else config.target_image,
            "boxed_answer": "\\boxed{" + ground_truth(item) + "}", "answer_text": answer_text(item),
            "answer_option": answer_option(item, choice_format)}


def template_analysis(item: SeedItem, config: TemplateConfig, choice_format: str = DEFAULT_CHOICE_FORMAT
                      ) -> ExpertAnalysis:
    """What stage 2 would have parsed from an expert's text, made from the templates."""
    fields = _fields(item, config, choice_format)
    transition = config.transition_video if item.is_video else config.transition_image
    local = config.local_video if item.is_video else config.local_image
    return ExpertAnalysis(global_text=render(config.global_text, **fields), transition=render(transition, **fields),
                          local_text=render(local, **fields), answer=ground_truth(item),
                          target=fields["target"])


def template_text_only(item: SeedItem, config: TemplateConfig, choice_format: str = DEFAULT_CHOICE_FORMAT) -> str:
    return render(config.text_only, **_fields(item, config, choice_format))

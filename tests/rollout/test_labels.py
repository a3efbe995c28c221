"""TaskLabel: what the correctness reward reads from OpenRLHF's `label`."""
from __future__ import annotations

import pytest

from openrlhf_ext.labels import TaskLabel
from pixel_reasoner.errors import DataError


def test_round_trip_and_scoring():
    label = TaskLabel("B", "multiple_choice", ("Lion", "Sheep"), False, "vstar-1").validate()
    parsed = TaskLabel.parse(label.to_json())
    assert parsed == label
    assert parsed.score("(B)") == parsed.score("Sheep") == 1.0 and parsed.score("A") == 0.0
    assert parsed.score(None) == 0.0


def test_bare_labels_are_answers_and_auto_kinds_are_decided():
    assert TaskLabel.parse("3").resolved_scoring() == "count" and TaskLabel.parse("3").score("three") == 1.0
    assert TaskLabel.parse("a red car").resolved_scoring() == "exact_match"
    assert TaskLabel.parse({"answer": "x", "is_video": True}).is_video
    anls = TaskLabel.parse('{"answer": ["Mountain View", "mountain view, ca"], "scoring": "anls"}')
    assert anls.score("mountain veiw") == pytest.approx(1 - 2 / 13)


@pytest.mark.parametrize("label, message", [
    ('{"answer": "E", "scoring": "multiple_choice", "choices": ["a", "b"], "qid": "q1"}',
     "label of q1: answer 'E' is neither a letter A-B nor the text of one of the 2 choices"),
    ('{"answer": "many", "scoring": "count"}', "counting answer 'many' is not a number"),
    ('{"answer": "  "}', "the answer is empty"),
    ('{"answer": null}', "the answer is missing"),
    ('{"answer": "x", "scoring": "bleu"}', "`scoring` is 'bleu'"),
    ('{"answer": "x", "choice": ["a"]}', "unknown label key(s) ['choice']"),
    ('{"answer": "a", "scoring": "multiple_choice"}', "a multiple-choice label needs `choices`"),
])
def test_bad_labels_are_errors_naming_the_problem(label, message):
    with pytest.raises(DataError) as err:
        TaskLabel.parse(label).validate()
    assert message in str(err.value)


def test_labels_written_before_the_rename_say_kind():
    with pytest.warns(FutureWarning, match="the label field `kind` is deprecated, use `scoring`"):
        label = TaskLabel.parse('{"answer": "3", "kind": "count", "qid": "old-1"}')
    assert label == TaskLabel("3", "count", qid="old-1") and '"scoring": "count"' in label.to_json()


def test_the_paper_kind_is_the_official_reward_on_the_whole_trajectory():
    """The RL review's exact-match misses (rl_review_2026-12.md, M5) that the official reward accepts, and the
    trajectory (not the last turn's extracted answer) being what it reads."""
    def turns(*texts):
        return [{"role": "assistant", "content": t} for t in texts]

    thousand = TaskLabel("1000", "paper").validate()
    assert thousand.reward("answer", "1,000", turns("\\boxed{1,000}")) == 1.0
    assert TaskLabel("1000", "exact_match").reward("answer", "1,000", turns("\\boxed{1,000}")) == 0.0
    percent = TaskLabel(("15%",)).validate("paper")
    assert percent.reward("answer", "15", turns("\\boxed{15}"), "paper") == 1.0
    assert percent.reward("answer", "15", turns("\\boxed{15}"), "exact_match") == 0.0
    letter = TaskLabel("B", "paper", ("Lion", "Sheep")).validate()
    earlier = turns("Probably \\boxed{B}.\n<tool_call>\n{}\n</tool_call>", "The fifth call.\n<tool_call>")
    assert letter.reward("max_operations", None, earlier) == 1.0  # scored whatever ended the episode
    assert TaskLabel("B", "multiple_choice", ("Lion", "Sheep")).reward("max_operations", None, earlier) == 0.0
    assert letter.reward("answer", "B: Sheep", turns("\\boxed{B: Sheep}")) == 0.0  # the paper's rule: letter only

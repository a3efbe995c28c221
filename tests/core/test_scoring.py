"""Golden cases for answer extraction and scoring (the eval and the RL reward depend on them)."""
import pytest

from pixel_reasoner.parsing import extract_answer, parse_turn
from pixel_reasoner.scoring import anls, choice_letter, exact_match, parse_count, score

CHOICES = ["Lion", "Sheep", "Tiger", "Elephant"]


@pytest.mark.parametrize("text, answer", [
    ("so \\boxed{B}", "B"), ("\\boxed{\\text{Alabama}} and later \\boxed{ {x} }", "{x}"),
    ("<answer> 42 </answer>", "42"), ("reasoning\nAnswer: Sheep", "Sheep"), ("no answer here", None),
    ("\\boxed{unclosed", None), ("\\boxed{a}<|im_end|>", "a"),
])
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


@pytest.mark.parametrize("pred, letter", [("B", "B"), ("(b)", "B"), ("B. Sheep", "B"), ("sheep", "B"),
                                          ("The answer is C", "C"), ("\\text{D}", "D"), ("E", None), ("A cat", None)])
def test_choice_letter(pred, letter):
    assert choice_letter(pred, CHOICES) == letter


def test_multiple_choice_with_option_text_ground_truth():
    assert score("B", "Sheep", "multiple_choice", CHOICES) == 1.0
    assert score("Tiger", "C", "multiple_choice", CHOICES) == 1.0
    assert score("A", "C", "multiple_choice", CHOICES) == 0.0


@pytest.mark.parametrize("text, value", [("3", 3), ("three", 3), ("twenty-one", 21), ("There are 4 cars", 4),
                                         ("none", 0), ("one hundred and five", 105), ("1,000", 1000), ("many", None)])
def test_parse_count(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize("pred, gts, expected", [
    ("", "", 1.0), ("", "abc", 0.0), ("abc", "", 0.0),
    ("Alabama", ["alabama"], 1.0), ("  ALA  bama ", "ala bama", 1.0),
    ("abcd", "abcx", 0.75),                 # NL = 0.25
    ("ab", "abcd", 0.5),                    # NL = 0.5 exactly: kept (lmms-eval's `question_result < 0.5`)
    ("ab", "abc", 2 / 3),
    ("a  b", "ab", 0.75),                   # distance on normalised strings, divided by the raw length (4)
    ("abc", "abcd", 0.75),
    ("wrong", ["nope", "wrang"], 0.8),      # max over ground truths
])
def test_anls_edges(pred, gts, expected):
    assert anls(pred, gts) == pytest.approx(expected)


def test_exact_match_normalisation():
    assert exact_match("\\text{New  York}.", ["new york"]) == 1.0
    assert exact_match("York", ["new york"]) == 0.0


def test_parse_turn_distinguishes_calls_from_answers():
    assert parse_turn('x <tool_call>{"name": "a", "arguments": {}}</tool_call>\n').is_tool_call
    assert parse_turn('x <tool_call>{"name": "a", "arguments": {}}').is_tool_call  # stopped inside the block
    final = parse_turn('<tool_call>{"name": "a", "arguments": {}}</tool_call> so \\boxed{A}')
    assert not final.is_tool_call and final.answer == "A"
    assert parse_turn('<tool_call>```json\n{"name": "a", "arguments": "{\\"k\\": 1}"}\n```</tool_call>').call.arguments == {"k": 1}

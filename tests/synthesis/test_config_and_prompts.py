"""The typed YAML config (strict keys and types, paper defaults) and the swappable paper prompts."""
import os

import pytest

from data_synthesis.config import SynthesisConfig, load_config
from data_synthesis.prompts import PROMPT_NAMES, default_prompt, format_query, load_prompts, render
from pixel_reasoner.errors import ConfigError

RECIPE = os.path.join(os.path.dirname(__file__), "..", "..", "recipes", "synth.yaml")


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_the_recipe_loads_with_the_papers_values():
    config = load_config(RECIPE)
    assert config.self_correction.image == {"single_pass": 0.3, "recrop_once": 0.2, "recrop_twice": 0.2,
                                            "further_zoom_in": 0.3}
    assert config.self_correction.video == {"single_pass": 0.9, "reselect": 0.1}
    assert abs(config.text_only.share - 2000 / 7500) < 1e-3
    assert config.endpoints["expert"].model.startswith("gpt-4o")
    assert [s.format for s in config.sources] == ["sa1b", "web", "star"]
    defaults = SynthesisConfig()
    assert defaults.self_correction.image == config.self_correction.image
    assert defaults.text_only.share == 2000 / 7500


@pytest.mark.parametrize("text, message", [
    ("expert:\n  sampling:\n    temprature: 0.1\n", "expert.sampling.temprature: unknown key"),
    ("endpoints:\n  expert:\n    modle: x\n", "endpoints.expert.modle: unknown key"),
    ("sources:\n  - format: sa1b\n    path: x\n    colour: red\n", r"sources\[0\].colour: unknown key"),
    ("sources:\n  - path: x\n", r"sources\[0\].format: required key is missing"),
    ("seed: one\n", "seed: expected an integer"),
    ("output:\n  copy_media: 1\n", "output.copy_media: expected true or false"),
    ("sources:\n  - format: flickr\n    path: x\n", r"sources\[0\].format: 'flickr' is not one of sa1b, web"),
    ("self_correction:\n  image: {single_pass: 0.9}\n", "sum to 1"),
    ("expert:\n  endpoint: nowhere\n", "expert.endpoint: endpoint 'nowhere' is not defined"),
    ("budget_preset: huge\n", "budget_preset: 'huge' is not one of consistent"),
    ("crop_max_pixels: 10\n", r"crop_min_pixels / crop_max_pixels: max_pixels=10 < min_pixels"),
])
def test_bad_configs_name_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, "text_only: {share: 0}\n" + text))


def test_overrides_apply_yaml_values(tmp_path):
    config = load_config(RECIPE, ["expert.sampling.temperature=0.1", "text_only.share=0", "output.dir=/tmp/x"])
    assert config.expert.sampling.temperature == 0.1 and config.text_only.share == 0 and config.output.dir == "/tmp/x"
    with pytest.raises(ConfigError, match="expert.sampling.temprature: unknown key"):
        load_config(RECIPE, ["expert.sampling.temprature=0.1"])


def test_default_prompts_are_the_papers_texts():
    qgen = default_prompt("question_generation")
    assert qgen.startswith("You are an expert in generating questions about small details in a\nimage.")
    assert "return 'Not valid'" in qgen and "correct_answer: C\n</question>" in qgen
    assert qgen.endswith("Stop generating after you call a tool.\nHere is the image.")
    sa1b, web, star = (default_prompt(n) for n in ("expert_sa1b", "expert_web", "expert_star"))
    assert '"Now I will zoom in to look clearer at \'query object or text\'."' in sa1b.replace("\n", " ")
    assert "Final answer should be\ntext from article." in web and "\\boxed{Alabama}" in web
    assert "You will be given 16 images (video frames) in chronological order" in star.replace("\n", " ")
    for text in (sa1b, web, star):
        assert text.endswith("{text}") and not any(line.startswith(" ") for line in text.splitlines())


def test_render_fills_declared_placeholders_and_keeps_latex():
    rendered = render(default_prompt("question_generation"), tool_description='{"name": "crop"}')
    assert 'Here is the tool description {"name": "crop"}.' in rendered
    assert '{"name": <function-name>, "arguments": <args-json-object>}' in rendered  # {{ }} unescaped
    rendered = render(default_prompt("expert_sa1b"), text=format_query("Which?", ["a", "b"]))
    assert rendered.endswith("question: Which?\nchoices:\nA: a\nB: b") and "\\boxed{}" in rendered


def test_prompt_overrides_are_read_from_prompts_dir(tmp_path):
    (tmp_path / "expert_web.txt").write_text("My web prompt.\n{text}\n")
    prompts = load_prompts(str(tmp_path))
    assert prompts["expert_web"] == "My web prompt.\n{text}"
    assert prompts["expert_sa1b"] == default_prompt("expert_sa1b") and set(prompts) == set(PROMPT_NAMES)
    (tmp_path / "expert_star.txt").write_text("No placeholder here.")
    with pytest.raises(ConfigError, match=r"must contain the placeholder\(s\) \{text\}"):
        load_prompts(str(tmp_path))


def test_prompts_command_writes_editable_defaults(tmp_path):
    from data_synthesis.cli import main

    assert main(["prompts", "--write", str(tmp_path / "p")]) == 0
    assert load_prompts(str(tmp_path / "p")) == load_prompts("")

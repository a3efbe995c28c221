"""open_r1_ext.decisions finds the decision tokens of zoom-task teacher turns as the zoom tokenizer splits them:
the crop box's corner (x1, y1 in the shown original), the pattern line after the crop, and the option letter."""
from open_r1_ext.decisions import decision_positions
from pixel_reasoner.testing.tiny_qwen import build_zoom_tokenizer
from pixel_reasoner.zoom_task.corpus import episode_texts
from pixel_reasoner.zoom_task.items import KINDS, make_item
from pixel_reasoner.zoom_task.scene import PATTERNS, ZoomTaskConfig


def test_decision_tokens_of_detail_turns():
    tokenizer, config = build_zoom_tokenizer(), ZoomTaskConfig()
    shown_cell = config.shown_size // config.grid
    for index in range(6):
        texts = list(episode_texts("qwen", config, index))
        turn = texts[2 * KINDS.index("detail") + 1]
        tokens = [tokenizer.decode([i]) for i in tokenizer(turn)["input_ids"]]
        found = {name: tokens[j] for name, j in decision_positions(tokens).items()}
        item = make_item("detail", 0, "train", index, config)
        row, col = item.scene.cell
        assert found == {"box_x1": str(col * shown_cell), "box_y1": str(row * shown_cell),
                         "crop_class": PATTERNS[item.scene.pattern] + "\n", "option": f"{item.answer}: "}


def test_coarse_turns_have_no_decision_tokens():
    tokenizer, config = build_zoom_tokenizer(), ZoomTaskConfig()
    turn = list(episode_texts("qwen", config, 0))[2 * KINDS.index("colour") + 1]
    assert decision_positions([tokenizer.decode([i]) for i in tokenizer(turn)["input_ids"]]) == {}

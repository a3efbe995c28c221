"""The hooks our packages offer to patched upstream code, where the patched-tree tests do not reach them in CI
(Open-R1 is only checked where its snapshot exists)."""
import pytest
from trl import SFTConfig

from open_r1_ext.sft import check_training_args
from pixel_reasoner.errors import ConfigError


@pytest.mark.parametrize("options, message", [
    ({"eval_strategy": "steps", "eval_steps": 10}, "eval_strategy=steps: Pixel Reasoner SFT has no evaluation split"),
    ({"chat_template_path": "Qwen/Qwen3-0.6B"}, "chat_template_path is set, but the processor must use"),
])
def test_prepare_training_refuses_options_our_collator_cannot_serve(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        check_training_args(SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, **options))


def test_open_r1_chat_template_field_is_refused(tmp_path):
    """Open-R1's SFTConfig adds `chat_template`; setting it would replace the template our masks come from."""
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False)
    check_training_args(args)  # TRL's defaults pass
    args.chat_template = "{{ messages }}"
    with pytest.raises(ConfigError, match="chat_template is set"):
        check_training_args(args)

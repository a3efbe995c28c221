"""The trajectory data model: a versioned JSONL schema shared by synthesis (writes), SFT (trains), eval and the
viewer (read), with converters from the released PixelReasoner-SFT-Data and to HF / OpenAI chat messages.

One JSON object per line (schema_version 1):
    {"schema_version": 1, "id": "sa1b-000123-recrop_once", "profile": "released",
     "media": [{"type": "image", "path": "images/sa1b_123.jpg"}],          # or {"type": "video", "path"|"frame_paths"}
     "question": "...", "choices": ["..."], "answer": "B", "source": "sa1b", "trajectory_type": "recrop_once",
     "meta": {...},
     "messages": [
       {"role": "system", "content": "You are a helpful assistant."},
       {"role": "user", "content": [{"type": "image", "path": "images/sa1b_123.jpg"}, {"type": "text", "text": "..."}]},
       {"role": "assistant", "content": "... <tool_call>\\n{...}\\n</tool_call>", "loss": false},   # inserted error
       {"role": "user", "observation": true, "error": "`bbox_2d` ... is degenerate ...",
        "content": [{"type": "text", "text": "\\nExecution error:\\n...\\n"}]},
       {"role": "assistant", "content": "... <tool_call>\\n{...}\\n</tool_call>"},
       {"role": "user", "observation": true, "content": [{"type": "text", "text": "\\nHere is the cropped image ..."},
                                                         {"type": "image", "path": "crops/x_2.png",
                                                          "provenance": {"operation": "...", "kind": "crop", "parent": 1,
                                                                         "box": [x1, y1, x2, y2], "source": "...",
                                                                         "source_size": [W, H], "source_image": 1}}]},
       {"role": "assistant", "content": "... \\\\boxed{B}"}]}
Assistant content is the model's raw text, tool calls included, so what is trained is exactly what a model emits.
`loss: false` marks an assistant turn excluded from the SFT loss; `observation: true` marks tool outputs (always
excluded), `error` the message of a failed operation. `provenance.box` is the image's region in the pixels of its
source (`source_size`), and `source_image` the index of the input image it comes from (null when none, e.g. a frame
of a video shown as a video), so viewers and faithfulness checks need no image decoding. Input images carry a
provenance too (operation null).
Relative paths resolve against the JSONL file's directory unless an image root is given. Records written before
0.2 call `trajectory_type` `kind`; they are read under the new name.

One module per job: `schema` (the record and its files), `validation` (checks of the messages), `records`
(episodes to records), `chat` (records to model/API chat messages), `released` (the released SFT data), `paths`.
"""
from __future__ import annotations

from pixel_reasoner.trajectory.chat import image_data_uri, to_hf_messages, to_openai_messages
from pixel_reasoner.trajectory.paths import portable_path, resolve_path, safe_stem
from pixel_reasoner.trajectory.records import messages_to_records, trajectory_from_episode
from pixel_reasoner.trajectory.released import from_released_sft
from pixel_reasoner.trajectory.schema import SCHEMA_VERSION, Trajectory, read_trajectories, write_trajectories
from pixel_reasoner.trajectory.validation import PART_TYPES, ROLES, validate_trajectory

__all__ = ["PART_TYPES", "ROLES", "SCHEMA_VERSION", "Trajectory", "from_released_sft", "image_data_uri",
           "messages_to_records", "portable_path", "read_trajectories", "resolve_path", "safe_stem",
           "to_hf_messages", "to_openai_messages", "trajectory_from_episode", "validate_trajectory",
           "write_trajectories"]

"""Turn composed episodes into trajectory records (schema v1) with their images on disk.

Layout under the output directory (paths in the JSONL are relative to it, so the directory can be moved):
    trajectories.jsonl
    media/<source>/<stem>.<ext>            input images (copied when `copy_media`, else referenced in place)
    media/<source>/<stem>/frame_NN.png     a video's 16 sampled frames, as the model saw them (always written)
    crops/<source>/<stem>_<k>.png          images produced by operations (k = the image's index in the episode)
A video is stored as its sampled frames (`frame_paths`), so `select_frames` indices mean the same frames at
training time as at synthesis time, whatever the trainer's own video sampling would do.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile

from data_synthesis.compose import Composed
from data_synthesis.seeds import SeedItem
from pixel_reasoner.media import save_image
from pixel_reasoner.trajectory import Trajectory, messages_to_records


def file_stem(item_id: str) -> str:
    """A file-name-safe, collision-free stem for an item id."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", item_id)[:80]
    return f"{safe}-{hashlib.sha1(item_id.encode()).hexdigest()[:8]}"


class TrajectoryWriter:
    def __init__(self, output_dir: str, copy_media: bool, profile_name: str):
        self.output_dir = os.path.abspath(output_dir)
        self.copy_media = copy_media
        self.profile_name = profile_name

    def build(self, item: SeedItem, composed: Composed, meta: dict) -> Trajectory:
        stem = file_stem(item.id)
        media_dir = os.path.join(self.output_dir, "media", _safe(item.source))
        media_part = self._video_part(composed, media_dir, stem) if item.is_video else \
            {"type": "image", "path": self._input_image(item.image or "", media_dir, stem)}
        messages = [self._with_media(m, media_part) if m["role"] == "user" and not m.get("observation") else m
                    for m in composed.messages]
        records = messages_to_records(messages, os.path.join(self.output_dir, "crops", _safe(item.source)),
                                      self.output_dir, stem)
        media = [{k: v for k, v in p.items() if k != "provenance"} for m in records[:2]
                 if isinstance(m.get("content"), list) for p in m["content"] if p["type"] in ("image", "video")]
        trajectory = Trajectory(id=item.id, messages=records, profile=self.profile_name, media=media,
                                question=item.question, choices=item.choices, answer=item.answer,
                                source=item.source, trajectory_type=composed.trajectory_type, meta=meta)
        problems = trajectory.validate(root=self.output_dir, where=f"trajectory {item.id}")
        if problems:
            raise AssertionError("composed an invalid trajectory: " + "; ".join(problems))
        return trajectory

    def _with_media(self, message: dict, media_part: dict) -> dict:
        """The prompt's user turn with its input image/video as a file reference instead of pixels."""
        content = [media_part if p.get("type") in ("image", "video") else p for p in message["content"]]
        return dict(message, content=content)

    def _input_image(self, path: str, media_dir: str, stem: str) -> str:
        if not self.copy_media:
            return os.path.abspath(path)
        target = os.path.join(media_dir, stem + os.path.splitext(path)[1].lower())
        if not os.path.exists(target):
            os.makedirs(media_dir, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=media_dir, prefix=".tmp-")
            os.close(fd)
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        return target

    def _video_part(self, composed: Composed, media_dir: str, stem: str) -> dict:
        frames = composed.episode.video_frames()
        paths = [os.path.relpath(save_image(frame, os.path.join(media_dir, stem, f"frame_{k:02d}.png")),
                                 self.output_dir) for k, frame in enumerate(frames, 1)]
        return {"type": "video", "frame_paths": paths, "num_frames": len(paths)}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)

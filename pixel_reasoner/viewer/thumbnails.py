"""Images embedded in the page as resized JPEG data URIs, so the file can be mailed or opened anywhere.

Thumbnails keep a page of hundreds of trajectories at a few tens of MB; each file is encoded once per size.
"""
from __future__ import annotations

import base64
import io
import os

from PIL import Image

from pixel_reasoner.errors import DataError
from pixel_reasoner.media import VideoSource
from pixel_reasoner.trajectory import resolve_path


class Thumbnails:
    def __init__(self, size: int, jpeg_quality: int):
        self.size, self.jpeg_quality = size, jpeg_quality  # size: longest side, in pixels
        self._uris: dict[tuple[str, int], tuple[str, tuple[int, int]]] = {}

    def file(self, path: str, size: int | None = None) -> tuple[str, tuple[int, int]]:
        """(data URI, original size) of an image file; raises DataError when unreadable."""
        size = size or self.size
        key = (os.path.abspath(path), size)
        if key not in self._uris:
            try:
                with Image.open(path) as im:
                    full = im.size
                    im.draft("RGB", (size, size))  # JPEGs decode at a reduced scale: a 12-MP photo costs ~1/8
                    im.load()
                    self._uris[key] = (self.encode(im, size), full)
            except (OSError, SyntaxError, ValueError) as e:
                raise DataError(f"cannot read image {path}: {e}") from e
        return self._uris[key]

    def encode(self, image: Image.Image, size: int) -> str:
        im = image.convert("RGB")
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=self.jpeg_quality)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def video_frames(part: dict, root: str) -> list[str | Image.Image]:
    """The frames a video part shows: its frame files, its in-line frames, or frames sampled from its file."""
    if part.get("frame_paths"):
        return [resolve_path(p, root) for p in part["frame_paths"]]
    if isinstance(part.get("video"), list):
        return [resolve_path(p, root) if isinstance(p, str) else p for p in part["video"]]
    path = part.get("path") or part.get("video")
    if not path:
        raise DataError("video part without `path` or `frame_paths`")
    return VideoSource(path=resolve_path(path, root), num_frames=part.get("num_frames") or 16).load_frames()

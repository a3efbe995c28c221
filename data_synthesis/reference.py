"""The reference visual cue of an item: a box in source pixels, or 1-based frames among the video's 16 samples.

STAR-QA gives temporal windows in seconds; they map to the sampled frames whose timestamps fall inside, using the
same uniform sampling as the engine (`pixel_reasoner.media.uniform_frame_indices`) and the video's frame rate.
"""
from __future__ import annotations

from dataclasses import dataclass

from data_synthesis.geometry import Box, window_to_frames
from data_synthesis.seeds import SeedItem
from pixel_reasoner.errors import DataError
from pixel_reasoner.media import uniform_frame_indices


@dataclass
class Reference:
    box: Box | None = None  # source pixels of the image, or of the reference frames of a video
    frames: list[int] | None = None

    def to_dict(self) -> dict:
        out: dict = {}
        if self.frames is not None:
            out["frames"] = list(self.frames)
        if self.box is not None:
            out["box"] = list(self.box)
        return out


def video_frame_times(path: str, num_frames: int) -> list[float]:
    """Timestamps (seconds) of the `num_frames` frames the engine samples from `path`."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        total = stream.frames
        if not total:  # the container does not say: count packets, as the engine does
            total = sum(1 for packet in container.demux(stream) if packet.size)
        rate = stream.average_rate or stream.guessed_rate
        if not rate:
            raise DataError(f"{path}: the video has no frame rate; give `ref_frames` instead of a time window")
        fps = float(rate)
    return [i / fps for i in uniform_frame_indices(total, num_frames)]


def ensure_min_size(box: Box, min_side: int, width: int, height: int) -> Box:
    """Grow a box around its centre to at least `min_side` per side (a one-word answer box can be 10 px tall)."""
    x1, x2 = _grow(box[0], box[2], width, min_side)
    y1, y2 = _grow(box[1], box[3], height, min_side)
    return (x1, y1, x2, y2)


def _grow(lo: int, hi: int, limit: int, min_side: int) -> tuple[int, int]:
    side = min(min_side, limit)
    if hi - lo >= side:
        return lo, hi
    start = min(max(0, round((lo + hi - side) / 2)), limit - side)
    return start, start + side


def resolve_reference(item: SeedItem, num_frames: int, max_frames: int, min_side: int,
                      image_size: tuple[int, int] | None) -> Reference:
    if item.is_video:
        if item.ref_frames is not None:
            bad = [f for f in item.ref_frames if not 1 <= f <= num_frames]
            if bad:
                raise DataError(f"{item.location}: ref_frames {bad} outside 1..{num_frames}")
            frames = item.ref_frames
            if len(frames) > max_frames:
                step = len(frames) / max_frames
                frames = [frames[int(k * step)] for k in range(max_frames)]
            return Reference(frames=list(frames), box=item.ref_box)
        if item.ref_window is None or item.video is None:
            raise DataError(f"{item.location}: a video item needs ref_frames or a time window")
        times = video_frame_times(item.video, num_frames)
        return Reference(frames=window_to_frames(item.ref_window[0], item.ref_window[1], times, max_frames))
    if item.ref_box is None or image_size is None:
        raise DataError(f"{item.location}: an image item needs a reference box")
    return Reference(box=ensure_min_size(item.ref_box, min_side, *image_size))

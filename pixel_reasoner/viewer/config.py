"""How the viewer's page is built."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ViewerConfig:
    """Thumbnails keep a page of hundreds of trajectories at a few tens of MB."""

    thumb_size: int = 768  # longest side of an embedded image, in pixels
    frame_thumb_size: int = 160  # longest side of a video frame in a prompt's filmstrip
    jpeg_quality: int = 85
    limit: int = 200  # trajectories rendered; the page and the CLI say how many were left out
    title: str = "Pixel Reasoner · trajectories"
    replay: bool = True  # recompute missing crop boxes by replaying tool calls on the original images

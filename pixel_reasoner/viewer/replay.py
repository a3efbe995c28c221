"""Where the produced images of a trajectory without provenance came from, by replaying its tool calls.

Records converted from the released SFT data carry no provenance, so the viewer could not draw their crops. Running
their assistant turns through `Episode` on the original images yields each produced image's provenance, which is
right only if the replay reproduces the trajectory; the caller compares the number of produced images.
"""
from __future__ import annotations

import os

from pixel_reasoner.config import EpisodeLimits
from pixel_reasoner.episode import Episode, EpisodeConfig
from pixel_reasoner.errors import PixelReasonerError
from pixel_reasoner.media import ImageFile
from pixel_reasoner.protocol import get_profile
from pixel_reasoner.trajectory import Trajectory, resolve_path

# A recorded trajectory already ran under its own limits; the replay must not stop it earlier.
_UNLIMITED = EpisodeLimits(max_operations=1000, max_images=1000, max_turns=1000)


def replay_provenance(trajectory: Trajectory, root: str) -> list[dict] | None:
    """The provenance of every image the replay produces, in order; None when the trajectory cannot be replayed.

    Only image trajectories are replayed (the released data numbers video frames differently from us), and only
    when every original image is on disk and the profile is registered.
    """
    if not trajectory.media or any(m.get("type") == "video" for m in trajectory.media):
        return None
    try:
        sources = [ImageFile(resolve_path(m["path"], root)) for m in trajectory.media if m.get("type") == "image"]
        if not all(os.path.exists(s.path) for s in sources):
            return None
        episode = Episode(get_profile(trajectory.profile), images=sources, config=EpisodeConfig(limits=_UNLIMITED))
        produced: list[dict] = []
        for m in trajectory.messages:
            if m.get("role") != "assistant" or episode.done:
                continue
            result = episode.step(m["content"])
            if result.observation is not None:
                produced += [p["provenance"] for p in result.observation.content if p["type"] == "image"]
    except (PixelReasonerError, OSError, KeyError, TypeError):
        return None
    return produced

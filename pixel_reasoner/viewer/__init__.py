"""A self-contained HTML page for looking at trajectories (`pixel-reasoner view`).

Researchers look at trajectories far more than they read them, so the page shows every turn in order, every image
(embedded as a resized JPEG, so the file can be mailed or opened anywhere), and each crop drawn as a box on the
image it was cut from: on the original (in source pixels, from the image's `provenance`) and, for a crop of a
crop, on its parent too. Turns excluded from the SFT loss (`loss: false`) are hatched and badged; failed operations
are red. A summary, an index and filters (errors, masked turns, wrong answers) sit on top.

Three steps, one module each: `load` (files to trajectories; other packages register their row formats there),
`analyse` (images, boxes, counts, scores; `replay` recovers the boxes of records without provenance by replaying
their tool calls through `Episode`) and `render` (the Jinja2 templates in `templates/`).
"""
from __future__ import annotations

import os
from typing import Sequence

from pixel_reasoner.viewer.analyse import analyse
from pixel_reasoner.viewer.config import ViewerConfig
from pixel_reasoner.viewer.load import Loaded, RowFormat, load_for_view, register_row_format
from pixel_reasoner.viewer.render import render_page

__all__ = ["Loaded", "RowFormat", "ViewerConfig", "load_for_view", "register_row_format", "render_page",
           "write_report"]


def write_report(paths: Sequence[str], out: str, root: str | None = None,
                 config: ViewerConfig = ViewerConfig()) -> dict:
    """Render `paths` into one HTML file at `out`; returns counts for the caller to report."""
    loaded, notes = load_for_view(paths, root)
    shown = loaded[: config.limit]
    left_out = [f"showing the first {len(shown)} of {len(loaded)} trajectories (raise --limit to see more)"] \
        if len(loaded) > len(shown) else []
    analyses = [analyse(item, replay=config.replay) for item in shown]
    page = render_page(analyses, config, left_out + notes, sources=[os.path.basename(p) for p in paths],
                       total=len(loaded))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(page)
    return {"trajectories": len(loaded), "shown": len(shown), "notes": notes, "bytes": len(page.encode("utf-8")),
            "out": out}

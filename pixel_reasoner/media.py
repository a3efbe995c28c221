"""Images held by reference, decoded once into a cache bounded in bytes, resized to pixel budgets.

Why: a 4000x3000 source decodes to 36 MB. Holding it per sample (512 queries x 8 samples in RL) needs ~150 GB
of host RAM, and peers report 0.75–1.2 TB OOMs. Here every image is an `ImageSource` (a path, encoded bytes, or
a frame of a video); its pixels live in one `DecodedImageCache` shared by all episodes of a process (so the n
samples of a query decode it once), evicted least-recently-used beyond a byte budget. Produced images (crops,
frames) stay in memory only inside their episode; encoding to PNG happens only when writing to disk.
"""
from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Hashable

import numpy as np
from PIL import Image

from pixel_reasoner.config import VIDEO_FRAMES, PixelBudget
from pixel_reasoner.errors import ConfigError, DataError, OperationError

logger = logging.getLogger(__name__)

IMAGE_FACTOR = 28  # Qwen2.5-VL: 14 px patches merged 2x2
MAX_ASPECT_RATIO = 200
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpeg", ".mpg")  # a path is a video file
DEFAULT_CACHE_BYTES = 1 << 30
RESAMPLE = Image.Resampling.BICUBIC  # what Qwen2-VL's image processor uses


def smart_resize(height: int, width: int, min_pixels: int, max_pixels: int, factor: int = IMAGE_FACTOR) -> tuple[int, int]:
    """Qwen2.5-VL's resize rule: sides multiples of `factor`, pixel count within [min_pixels, max_pixels].

    Same arithmetic as `transformers.models.qwen2_vl.image_processing_qwen2_vl.smart_resize` (tested against it).
    Raises OperationError for aspect ratios above 200, which the model's processor rejects.
    """
    if height <= 0 or width <= 0:
        raise OperationError(f"image has no pixels ({width}x{height})")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise OperationError(
            f"aspect ratio must be at most {MAX_ASPECT_RATIO}, got {max(height, width) / min(height, width):.1f} "
            f"({width}x{height}); choose a less elongated region")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return max(h_bar, factor), max(w_bar, factor)


MAX_RESIZE_ROUNDS = 4


def visual_tokens(width: int, height: int) -> int:
    """Visual tokens Qwen2.5-VL spends on an image already at its budget's size (sides multiples of 28): one per
    28x28 cell, after the vision encoder's 2x2 patch merging. Its prompt holds one placeholder per token."""
    return (width // IMAGE_FACTOR) * (height // IMAGE_FACTOR)


def budget_size(width: int, height: int, budget: PixelBudget) -> tuple[int, int]:
    """(width, height) an image of this size is shown at under `budget`: a fixed point of `smart_resize`.

    One `smart_resize` is enough for every realistic budget, but for extreme aspect ratios or very narrow budgets
    its result can fall outside [min_pixels, max_pixels] (sides are clamped to at least 28), and the model's
    processor would then resize our image a second time, so the model would see a size other than the one the
    observation text states. We apply the rule until it leaves the size unchanged, and refuse sizes that never
    settle inside the budget, with a message the model can act on.
    """
    h, w = smart_resize(height, width, budget.min_pixels, budget.max_pixels)
    for _ in range(MAX_RESIZE_ROUNDS):
        again = smart_resize(h, w, budget.min_pixels, budget.max_pixels)
        if again == (h, w):
            break
        h, w = again
    if smart_resize(h, w, budget.min_pixels, budget.max_pixels) != (h, w) or \
            not budget.min_pixels <= h * w <= budget.max_pixels:
        raise OperationError(f"a {width}x{height} region cannot be shown within the pixel budget "
                             f"[{budget.min_pixels}, {budget.max_pixels}]: it is too elongated; choose a region "
                             "closer to square")
    return w, h


def resize_to_budget(image: Image.Image, budget: PixelBudget) -> Image.Image:
    """Resize so that the model's own processor leaves the image unchanged (its smart_resize is then identity)."""
    w, h = budget_size(image.width, image.height, budget)
    if (w, h) == image.size:
        return image
    return image.resize((w, h), RESAMPLE)


def resize_region(image: Image.Image, box: tuple[int, int, int, int], budget: PixelBudget) -> Image.Image:
    """`image.crop(box)` resized to `budget`, in one pass: no full-resolution copy of the region is made (a 2400x2100
    region of a 12-MP source is 15 MB, per concurrent crop), and the resampling filter sees the real pixels just
    outside the region instead of a clamped edge."""
    x1, y1, x2, y2 = box
    w, h = budget_size(x2 - x1, y2 - y1, budget)
    if (w, h) == (x2 - x1, y2 - y1):
        return image.crop(box)
    return image.resize((w, h), RESAMPLE, box=box)


def pyramid_level(region: tuple[int, int], target: tuple[int, int], resample_gap: float | None) -> int:
    """How many times a region can be halved (box filter) before resampling it to `target`.

    Resampling a large region with bicubic costs in proportion to the downscale factor (the filter widens); halving
    first with `Image.reduce` (a 2x2 box average, ~12 ms for 12 MP, cached per source and shared by all samples of a
    query) leaves a bicubic step of at most ~2.5x. A level is used only while the remaining factor stays at least
    `resample_gap` (>= 1), so a reduced level is never upsampled and small zooms keep full-resolution pixels.
    None disables the pyramid (bicubic straight from full resolution, as the official code did).
    """
    if resample_gap is None:
        return 0
    scale = min(region[0] / target[0], region[1] / target[1])
    level = 0
    while scale / 2 ** (level + 1) >= resample_gap:
        level += 1
    return level


def resize_source_region(source: "ImageSource", box: tuple[int, int, int, int], budget: PixelBudget,
                         cache: "DecodedImageCache | None" = None, resample_gap: float | None = None) -> Image.Image:
    """`resize_region` of a source's full-resolution pixels, cut from its cached reduced level when the region is
    much larger than the budget (see `pyramid_level`; measured on a 12-MP source: 48 -> 18 ms, mean |Δ| 0.04/255)."""
    x1, y1, x2, y2 = box
    target = budget_size(x2 - x1, y2 - y1, budget)
    level = pyramid_level((x2 - x1, y2 - y1), target, resample_gap)
    if level == 0:
        return resize_region(source.load(cache), box, budget)
    factor = 2 ** level
    reduced = source.load_reduced(factor, cache)
    return reduced.resize(target, RESAMPLE, box=(x1 / factor, y1 / factor, x2 / factor, y2 / factor))


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparent areas composited on white (what the official code and most processors do)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.split()[3])
        return background
    return image.convert("RGB")


def _decode_image(fp, what: str) -> Image.Image:
    """Decode to RGB; an unreadable file is a DataError naming it, not a bare PIL exception."""
    try:
        with Image.open(fp) as im:
            im.load()
            return to_rgb(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"cannot decode {what} as an image: {type(e).__name__}: {e}") from e


def image_nbytes(image: Image.Image) -> int:
    return image.width * image.height * len(image.getbands())


class DecodedImageCache:
    """Thread-safe LRU of decoded images bounded in bytes; concurrent requests for one key decode it once.

    An entry larger than the whole budget is returned without being cached, so the budget is a hard bound.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        if max_bytes <= 0:
            raise ConfigError(f"DecodedImageCache max_bytes must be positive, got {max_bytes}")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._inflight: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def get(self, key: Hashable, loader: Callable[[], object], nbytes: Callable[[object], int]) -> object:
        while True:
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    self.hits += 1
                    return self._entries[key][0]
                event = self._inflight.get(key)
                if event is None:
                    event = self._inflight[key] = threading.Event()
                    self.misses += 1
                    break
            event.wait()  # another thread is decoding this key; then look again
        try:
            value = loader()
            size = nbytes(value)
            with self._lock:
                if size <= self.max_bytes:
                    self._entries[key] = (value, size)
                    self.nbytes += size
                    while self.nbytes > self.max_bytes:
                        _, (_, evicted) = self._entries.popitem(last=False)
                        self.nbytes -= evicted
                        self.evictions += 1
            return value
        finally:
            with self._lock:
                self._inflight.pop(key).set()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.nbytes = 0

    def stats(self) -> dict:
        return {"bytes": self.nbytes, "max_bytes": self.max_bytes, "entries": len(self._entries),
                "hits": self.hits, "misses": self.misses, "evictions": self.evictions}


_default_cache = DecodedImageCache()


def default_cache() -> DecodedImageCache:
    """The process-wide cache that all episodes share unless given their own."""
    return _default_cache


class ImageSource:
    """A reference to full-resolution pixels. `load()` decodes (through a cache); `key` identifies the pixels."""

    key: str

    def decode(self) -> Image.Image:
        raise NotImplementedError

    def load(self, cache: DecodedImageCache | None = None) -> Image.Image:
        cache = cache or default_cache()
        return cache.get(("decoded", self.key), self.decode, image_nbytes)  # type: ignore[return-value]

    def load_resized(self, budget: PixelBudget, cache: DecodedImageCache | None = None) -> Image.Image:
        """The image as shown to the model under `budget`; cached too, so n samples share it."""
        cache = cache or default_cache()
        return cache.get(("resized", self.key, budget.min_pixels, budget.max_pixels),
                         lambda: resize_to_budget(self.load(cache), budget), image_nbytes)  # type: ignore[return-value]

    def load_reduced(self, factor: int, cache: DecodedImageCache | None = None) -> Image.Image:
        """The full-resolution pixels box-averaged by `factor` (`Image.reduce`), cached like `load_resized`."""
        cache = cache or default_cache()
        return cache.get(("reduced", self.key, factor), lambda: self.load(cache).reduce(factor),
                         image_nbytes)  # type: ignore[return-value]

    def full_size(self, cache: DecodedImageCache | None = None) -> tuple[int, int]:
        """(width, height) at full resolution. File-backed sources read only the header, so asking for the size
        never decodes a 12-MP image that the cache has evicted."""
        return self.load(cache).size

    def describe(self) -> str:
        return self.key


def _header_size(fp, what: str) -> tuple[int, int]:
    try:
        with Image.open(fp) as im:
            return im.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"cannot read {what} as an image: {type(e).__name__}: {e}") from e


@dataclass(frozen=True)
class ImageFile(ImageSource):
    path: str

    @property
    def key(self) -> str:  # type: ignore[override]
        """Path plus modification time and size: a file rewritten in place is not served stale from the cache."""
        path = os.path.abspath(self.path)
        try:
            st = os.stat(path)
        except OSError:
            return "file:" + path
        return f"file:{path}@{st.st_mtime_ns}:{st.st_size}"

    def decode(self) -> Image.Image:
        if not os.path.exists(self.path):
            raise DataError(f"image file not found: {self.path} (resolved to {os.path.abspath(self.path)})")
        return _decode_image(self.path, self.path)

    def full_size(self, cache: DecodedImageCache | None = None) -> tuple[int, int]:
        if not os.path.exists(self.path):
            raise DataError(f"image file not found: {self.path} (resolved to {os.path.abspath(self.path)})")
        return _header_size(self.path, self.path)

    def describe(self) -> str:
        return self.path


@dataclass(frozen=True)
class ImageBytes(ImageSource):
    data: bytes = field(repr=False)
    digest: str = ""

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", hashlib.sha1(self.data).hexdigest())

    @property
    def key(self) -> str:  # type: ignore[override]
        return "bytes:" + self.digest

    def decode(self) -> Image.Image:
        return _decode_image(io.BytesIO(self.data), f"image bytes {self.digest[:12]} ({len(self.data)} bytes)")

    def full_size(self, cache: DecodedImageCache | None = None) -> tuple[int, int]:
        return _header_size(io.BytesIO(self.data), f"image bytes {self.digest[:12]} ({len(self.data)} bytes)")


@dataclass(frozen=True, eq=False)
class InMemoryImage(ImageSource):
    """An already decoded image (tests, callers holding PIL images). Not cached: it is its own storage."""

    image: Image.Image
    name: str = ""

    @property
    def key(self) -> str:  # type: ignore[override]
        return f"memory:{self.name or id(self.image)}"

    def decode(self) -> Image.Image:
        return to_rgb(self.image)

    def load(self, cache: DecodedImageCache | None = None) -> Image.Image:
        return to_rgb(self.image)

    def load_resized(self, budget: PixelBudget, cache: DecodedImageCache | None = None) -> Image.Image:
        """Memoised on this instance, not in the shared cache: the key of an in-memory image is its object id,
        which Python reuses once the image is freed, so a shared cache could serve another image's pixels."""
        memo = self.__dict__.setdefault("_resized", {})
        bounds = (budget.min_pixels, budget.max_pixels)
        if bounds not in memo:
            memo[bounds] = resize_to_budget(self.load(), budget)
        return memo[bounds]


def as_image_source(obj: "ImageSource | str | os.PathLike | bytes | Image.Image") -> ImageSource:
    """Accept the forms callers hold images in: a source, a path, encoded bytes or a PIL image."""
    if isinstance(obj, ImageSource):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return ImageFile(os.fspath(obj))
    if isinstance(obj, (bytes, bytearray)):
        return ImageBytes(bytes(obj))
    if isinstance(obj, Image.Image):
        return InMemoryImage(obj)
    if isinstance(obj, dict) and obj.get("bytes") is not None:  # HF datasets / parquet image struct
        return ImageBytes(bytes(obj["bytes"]))
    if isinstance(obj, dict) and obj.get("path"):
        return ImageFile(obj["path"])
    raise DataError(f"cannot use {type(obj).__name__} as an image; pass a path, bytes or a PIL image")


def uniform_frame_indices(total_frames: int, num_frames: int) -> list[int]:
    """`num_frames` indices spread evenly over [0, total_frames - 1], first and last included."""
    if total_frames <= 0:
        raise DataError("video has no frames")
    return [int(i) for i in np.linspace(0, total_frames - 1, num_frames).round().astype(int)]


VIDEO_SAMPLINGS = ("uniform", "segment_centres")


def segment_centre_indices(fps: float, last_index: int, num_frames: int, bound: tuple[float, float] | None = None,
                           first_index: int = 0) -> list[int]:
    """MVBench's `get_index` (OpenGVLab/Ask-Anything `video_chat2/mvbench.ipynb`, `MVBench_dataset.get_index`):
    the [start, end] seconds (the whole clip without a bound) become frame indices clamped to
    [first_index, last_index], split into `num_frames` equal segments, and the frame at each segment's centre is
    taken. The same arithmetic as the original (Python `round` for the bounds, numpy's for the offsets)."""
    start, end = bound if bound is not None else (-100000, 100000)
    start_idx = max(first_index, round(start * fps))
    end_idx = min(round(end * fps), last_index)
    seg_size = float(end_idx - start_idx) / num_frames
    return [int(start_idx + (seg_size / 2) + np.round(seg_size * idx)) for idx in range(num_frames)]


def video_frame_indices(total_frames: int, fps: float, num_frames: int, sampling: str,
                        bound: tuple[float, float] | None) -> list[int]:
    if total_frames <= 0:
        raise DataError("video has no frames")
    if sampling == "segment_centres":
        return segment_centre_indices(fps, total_frames - 1, num_frames, bound)
    return uniform_frame_indices(total_frames, num_frames)


def _decode_video_frames(path: str, num_frames: int, sampling: str = "uniform",
                         bound: tuple[float, float] | None = None) -> list[Image.Image]:
    """`num_frames` sampled RGB frames (`sampling`, see `VideoSource`): decord when installed (random access),
    else PyAV."""
    if not os.path.exists(path):
        raise DataError(f"video file not found: {path} (resolved to {os.path.abspath(path)})")
    try:
        import decord  # type: ignore
    except ImportError:
        decord = None
    if decord is not None:
        try:
            reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
            idx = video_frame_indices(len(reader), float(reader.get_avg_fps()), num_frames, sampling, bound)
            return [Image.fromarray(a) for a in reader.get_batch(idx).asnumpy()]
        except DataError:
            raise
        except Exception as e:  # decord cannot read every container PyAV can: fall back, but say so
            logger.warning("decord could not read %s (%s: %s); decoding with PyAV", path, type(e).__name__, e)
    try:
        import av  # type: ignore
    except ImportError:
        raise DataError(f"reading video {path} needs PyAV (pip install av, or the `video` extra) or decord") from None
    try:
        return _decode_with_pyav(av, path, num_frames, sampling, bound)
    except DataError:
        raise
    except (av.error.FFmpegError, IndexError, ValueError) as e:
        raise DataError(f"cannot decode video {path}: {type(e).__name__}: {e}") from e


def _decode_with_pyav(av, path: str, num_frames: int, sampling: str,
                      bound: tuple[float, float] | None) -> list[Image.Image]:
    with av.open(path) as container:
        if not container.streams.video:
            raise DataError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame-threaded decoding: several times faster on long clips
        total = stream.frames
        if not total:  # the container does not say: count by demuxing (cheap, no decode)
            total = sum(1 for p in container.demux(stream) if p.size)
            container.seek(0)
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        if sampling == "segment_centres" and fps <= 0:
            raise DataError(f"{path}: the container states no frame rate; segment sampling with bounds needs one")
        wanted = video_frame_indices(total, fps, num_frames, sampling, bound)
        targets = set(wanted)
        by_index: dict[int, Image.Image] = {}
        decoded = 0
        for i, frame in enumerate(container.decode(stream)):
            decoded = i + 1
            if i in targets:
                by_index[i] = frame.to_image().convert("RGB")
            if i >= wanted[-1]:
                break
    if not by_index:
        raise DataError(f"could not decode any frame of {path}")
    missing = [i for i in wanted if i not in by_index]
    if missing:  # the container over-reported its frame count: repeat the last decoded frame, loudly
        logger.warning("%s: header says %d frames but only %d decoded; sampled frame(s) %s repeat the last one",
                       path, total, decoded, missing)
    last = max(by_index)
    return [by_index.get(i, by_index[last]) for i in wanted]


@dataclass(frozen=True)
class VideoSource:
    """A video sampled to `num_frames` frames (16 in the paper), decoded once for all frames.

    Either a video file (`path`) or a list of pre-extracted frame images (`frame_paths`, as in the released
    Pixel-Reasoner data and MVBench frame dumps). A file is sampled `uniform`ly (first and last frame included),
    or at `segment_centres` (MVBench's own sampling, `segment_centre_indices`), optionally within `bound`
    (start and end in seconds).
    """

    path: str | None = None
    frame_paths: tuple[str, ...] | None = None
    num_frames: int = VIDEO_FRAMES
    sampling: str = "uniform"
    bound: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.frame_paths is None):
            raise DataError("a video needs exactly one of `path` (a video file) or `frame_paths` (frame images)")
        if self.frame_paths is not None:
            if isinstance(self.frame_paths, (str, bytes)) or not self.frame_paths:
                raise DataError(f"`frame_paths` must be a non-empty list of image paths, got {self.frame_paths!r}")
            object.__setattr__(self, "frame_paths", tuple(self.frame_paths))
            object.__setattr__(self, "num_frames", len(self.frame_paths))
        elif self.num_frames < 1:
            raise DataError(f"a video needs num_frames >= 1, got {self.num_frames}")
        if self.sampling not in VIDEO_SAMPLINGS:
            raise DataError(f"video sampling {self.sampling!r}; choose one of {VIDEO_SAMPLINGS}")
        if self.bound is not None:
            if self.sampling != "segment_centres" or len(self.bound) != 2:
                raise DataError(f"a video `bound` is (start, end) in seconds, for segment_centres sampling only; got "
                                f"{self.bound!r} with {self.sampling!r} sampling")
            object.__setattr__(self, "bound", (float(self.bound[0]), float(self.bound[1])))

    @property
    def key(self) -> str:
        if self.path is not None:
            sampling = "" if self.sampling == "uniform" else f"@{self.sampling}{list(self.bound or [])}"
            return f"video:{ImageFile(self.path).key[len('file:'):]}#{self.num_frames}{sampling}"
        return "frames:" + hashlib.sha1("\n".join(self.frame_paths or ()).encode()).hexdigest()

    def frames(self) -> list[ImageSource]:
        """The sampled frames as image sources (frame k of the list is `Frame k+1` to the model)."""
        if self.frame_paths is not None:
            return [ImageFile(p) for p in self.frame_paths]
        return [VideoFrame(self, i) for i in range(self.num_frames)]

    def load_frames(self, cache: DecodedImageCache | None = None) -> list[Image.Image]:
        cache = cache or default_cache()
        if self.frame_paths is not None:
            return [f.load(cache) for f in self.frames()]
        return cache.get(("video", self.key),
                         lambda: _decode_video_frames(self.path or "", self.num_frames, self.sampling, self.bound),
                         lambda frames: sum(image_nbytes(f) for f in frames))  # type: ignore[return-value]

    def describe(self) -> str:
        return self.path or f"{len(self.frame_paths or ())} frame images"


@dataclass(frozen=True)
class VideoFrame(ImageSource):
    video: VideoSource
    index: int  # 0-based into the sampled frames

    @property
    def key(self) -> str:  # type: ignore[override]
        return f"{self.video.key}@{self.index}"

    def decode(self) -> Image.Image:
        return self.video.load_frames()[self.index]

    def load(self, cache: DecodedImageCache | None = None) -> Image.Image:
        return self.video.load_frames(cache)[self.index]

    def describe(self) -> str:
        return f"{self.video.describe()} frame {self.index + 1}"


def save_image(image: Image.Image, path: str) -> str:
    """Encode to disk (PNG unless the suffix says otherwise). The only place produced images get encoded."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    image.save(path)
    return path


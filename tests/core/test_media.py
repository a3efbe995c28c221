"""Media: the shared decode cache under threads, cache configuration, cache keys, decoding errors and fallbacks."""
import logging
import os
import sys
import threading
import time
import types

import pytest
from PIL import Image

from pixel_reasoner import media
from pixel_reasoner.config import PixelBudget
from pixel_reasoner.episode import Episode
from pixel_reasoner.errors import ConfigError, DataError
from pixel_reasoner.media import DecodedImageCache, ImageBytes, ImageFile, InMemoryImage, VideoSource
from pixel_reasoner.testing.media import frame_color, save_scene, write_video


def test_threads_requesting_one_key_decode_it_once():
    cache = DecodedImageCache(1 << 20)
    calls, start = [], threading.Barrier(16)

    def loader():
        calls.append(1)
        time.sleep(0.05)  # long enough that every thread arrives while the first decodes
        return Image.new("RGB", (10, 10))

    results = [None] * 16

    def worker(i):
        start.wait()
        results[i] = cache.get("k", loader, media.image_nbytes)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert all(r is results[0] for r in results)
    assert cache.stats()["misses"] == 1 and cache.stats()["hits"] == 15


def test_a_failing_decode_reaches_every_waiter_and_does_not_wedge_the_key():
    cache = DecodedImageCache(1 << 20)
    attempts, start = [], threading.Barrier(4)

    def failing():
        attempts.append(1)
        time.sleep(0.02)
        raise DataError("unreadable")

    errors = []

    def worker():
        start.wait()
        try:
            cache.get("k", failing, media.image_nbytes)
        except DataError as e:
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(errors) == 4 and 1 <= len(attempts) <= 4
    assert cache.get("k", lambda: Image.new("RGB", (2, 2)), media.image_nbytes).size == (2, 2)


def test_an_entry_larger_than_the_budget_is_served_but_not_kept():
    cache = DecodedImageCache(100)
    big = cache.get("big", lambda: Image.new("RGB", (10, 10)), media.image_nbytes)  # 300 bytes
    assert big.size == (10, 10) and cache.stats()["entries"] == 0 and cache.nbytes == 0
    with pytest.raises(ConfigError, match="max_bytes must be positive"):
        DecodedImageCache(0)


def test_a_file_rewritten_in_place_is_not_served_stale(tmp_path):
    path = str(tmp_path / "a.png")
    cache = DecodedImageCache(1 << 20)
    Image.new("RGB", (30, 30), (255, 0, 0)).save(path)
    assert ImageFile(path).load(cache).getpixel((0, 0)) == (255, 0, 0)
    time.sleep(0.01)
    Image.new("RGB", (30, 40), (0, 0, 255)).save(path)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # make sure the mtime moves on coarse clocks
    assert ImageFile(path).load(cache).getpixel((0, 0)) == (0, 0, 255)


def test_in_memory_images_never_share_a_cache_slot():
    """Two in-memory images under one name (or a recycled id) must each be shown as themselves."""
    budget = PixelBudget.tokens(4, 64)
    red = InMemoryImage(Image.new("RGB", (100, 80), (255, 0, 0)), name="frame")
    blue = InMemoryImage(Image.new("RGB", (100, 80), (0, 0, 255)), name="frame")
    assert red.load_resized(budget).getpixel((0, 0)) == (255, 0, 0)
    assert blue.load_resized(budget).getpixel((0, 0)) == (0, 0, 255)


def test_asking_for_the_size_reads_only_the_header(tmp_path):
    path = save_scene(str(tmp_path / "big.jpg"), 1600, 1200)
    cache = DecodedImageCache(1 << 30)
    assert ImageFile(path).full_size(cache) == (1600, 1200)
    assert cache.stats()["misses"] == 0
    data = open(path, "rb").read()
    assert ImageBytes(data).full_size() == (1600, 1200)


@pytest.mark.parametrize("source, fragment", [
    (lambda p: ImageFile(str(p / "missing.png")), "image file not found"),
    (lambda p: ImageFile(str(_write(p / "notes.png", b"plain text"))), "cannot decode"),
    (lambda p: ImageBytes(b"\x89PNG garbage"), "cannot decode image bytes"),
])
def test_unreadable_images_are_data_errors_naming_the_file(tmp_path, source, fragment):
    src = source(tmp_path)
    with pytest.raises(DataError, match=fragment) as err:
        src.load(DecodedImageCache(1 << 20))
    if isinstance(src, ImageFile):
        assert src.path in str(err.value)


def _write(path, data):
    path.write_bytes(data)
    return path


def test_a_missing_image_inside_an_operation_is_an_observation_naming_it(tmp_path):
    frames = [save_scene(str(tmp_path / f"f{i}.png"), 64, 48, seed=i) for i in range(16)]
    os.remove(frames[4])
    ep = Episode("released", video=VideoSource(frame_paths=frames))
    r = ep.step('<tool_call>{"name": "select_frames", "arguments": {"target_frames": [5]}}</tool_call>')
    assert "image file not found" in r.observation.error and "f4.png" in r.observation.error


@pytest.mark.parametrize("kwargs, fragment", [
    ({}, "exactly one of `path`"), ({"path": "a.mp4", "frame_paths": ["a.png"]}, "exactly one of `path`"),
    ({"frame_paths": []}, "non-empty list"), ({"frame_paths": "a.png"}, "non-empty list"),
    ({"path": "a.mp4", "num_frames": 0}, "num_frames >= 1"),
])
def test_video_source_arguments_are_checked(kwargs, fragment):
    with pytest.raises(DataError, match=fragment):
        VideoSource(**kwargs)


def test_video_files_missing_or_unreadable_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="video file not found: .*nope.mp4"):
        VideoSource(path=str(tmp_path / "nope.mp4")).load_frames(DecodedImageCache(1 << 20))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(DataError, match="cannot decode video .*bad.mp4"):
        VideoSource(path=str(bad)).load_frames(DecodedImageCache(1 << 20))
    image = save_scene(str(tmp_path / "still.png"), 64, 48)
    frames = VideoSource(path=image, num_frames=3).load_frames(DecodedImageCache(1 << 20))
    assert len(frames) == 3 and frames[0].size == (64, 48)  # a still image is a one-frame video: repeated


def test_short_videos_repeat_frames_to_the_requested_count(tmp_path):
    clip = write_video(str(tmp_path / "short.mp4"), num_frames=5)
    frames = VideoSource(path=clip, num_frames=16).load_frames(DecodedImageCache(1 << 20))
    assert len(frames) == 16
    reds = [f.getpixel((32, 24))[0] for f in frames]
    assert abs(reds[0] - frame_color(0)[0]) <= 6 and abs(reds[-1] - frame_color(4)[0]) <= 6


def test_a_broken_decord_falls_back_to_pyav_and_says_so(tmp_path, monkeypatch, caplog):
    """decord is optional; when it is installed but cannot read a file, PyAV decodes it and a warning is logged."""
    def broken_reader(*args, **kwargs):
        raise RuntimeError("decord cannot open this container")

    monkeypatch.setitem(sys.modules, "decord", types.SimpleNamespace(VideoReader=broken_reader, cpu=lambda i: None))
    clip = write_video(str(tmp_path / "clip.mp4"), num_frames=16)
    with caplog.at_level(logging.WARNING, logger="pixel_reasoner.media"):
        frames = VideoSource(path=clip, num_frames=4).load_frames(DecodedImageCache(1 << 20))
    assert len(frames) == 4 and "decoding with PyAV" in caplog.text


def test_without_any_decoder_the_error_says_what_to_install(tmp_path, monkeypatch):
    clip = write_video(str(tmp_path / "clip.mp4"), num_frames=4)
    monkeypatch.setitem(sys.modules, "decord", None)
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(DataError, match="needs PyAV"):
        VideoSource(path=clip).load_frames(DecodedImageCache(1 << 20))


def test_large_crops_are_cut_from_a_cached_reduced_level_and_match_full_resolution_resampling():
    import numpy as np

    from pixel_reasoner.config import PixelBudget
    from pixel_reasoner.media import (DecodedImageCache, InMemoryImage, pyramid_level, resize_region,
                                      resize_source_region)
    from pixel_reasoner.testing.media import scene_image

    source = InMemoryImage(scene_image(2400, 1800, seed=3))
    cache = DecodedImageCache(1 << 30)
    budget = PixelBudget.tokens(4, 256)
    box = (0, 0, 2400, 1800)  # 4.3x downscale -> two halvings leave a 1.07x bicubic step
    assert pyramid_level((2400, 1800), (504, 378), 1.0) == 2 and pyramid_level((2400, 1800), (504, 378), None) == 0
    assert pyramid_level((600, 450), (504, 378), 1.25) == 0  # a small zoom keeps full-resolution pixels
    fast = np.asarray(resize_source_region(source, box, budget, cache, 1.25), dtype=float)
    exact = np.asarray(resize_region(source.load(cache), box, budget), dtype=float)
    assert fast.shape == exact.shape
    assert np.abs(fast - exact).mean() < 1.0
    assert cache.stats()["entries"] == 1  # the reduced level is cached for the next sample

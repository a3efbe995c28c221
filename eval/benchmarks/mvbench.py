"""MVBench (`OpenGVLab/MVBench`): 20 video tasks x 200 multiple-choice questions.

Layout:
    MVBench/
      json/action_sequence.json        # [{"video": "ZS9XR.mp4", "question": "...", "candidates": [...],
      json/...                         #   "answer": "<candidate text>", "start": 3.2, "end": 9.1}, ...]
      video/star/Charades_v1_480/ZS9XR.mp4
      video/tvqa/frames_fps3_hq/<clip>/00001.jpg ...     # Episodic Reasoning: a folder of frames per question
      video/...                        # one folder per source dataset, as in TASKS below (data0613/ also searched)

Frames are sampled as MVBench's own evaluation samples them (OpenGVLab/Ask-Anything `video_chat2/mvbench.ipynb`,
`MVBench_dataset.get_index`, `read_video`, `read_frame`): `video_frames` (16) segment centres, within the
question's `start`/`end` seconds for the four tasks that have them; video files at their own frame rate
(`max_frame = len(video) - 1`); TVQA frame folders at 3 fps, frames numbered from 1 (`00001.jpg`) with
`max_frame` = the number of entries in the folder. The model sees them as one video and may `select_frames` up
to 8 of them. (The paper's MVBench number comes from the Pixel-Reasoner parquet, 16 pre-extracted frames, which
`--data FILE.parquet` evaluates as given.) Every question records `meta.frame_sampling`.
"""
from __future__ import annotations

import os

from pixel_reasoner.errors import DataError
from pixel_reasoner.media import VideoSource, segment_centre_indices

from eval.benchmarks.common import LoadOptions, read_json, require, resolve_file
from eval.benchmarks.registry import Benchmark, PaperNumbers, register_benchmark
from eval.choices import letter
from eval.question import Question

# task -> (json file, folder under video/, "video" | "frame", has start/end bounds); as in MVBench's evaluation
TASKS = {
    "Action Sequence": ("action_sequence.json", "star/Charades_v1_480", "video", True),
    "Action Prediction": ("action_prediction.json", "star/Charades_v1_480", "video", True),
    "Action Antonym": ("action_antonym.json", "ssv2_video", "video", False),
    "Fine-grained Action": ("fine_grained_action.json", "Moments_in_Time_Raw/videos", "video", False),
    "Unexpected Action": ("unexpected_action.json", "FunQA_test/test", "video", False),
    "Object Existence": ("object_existence.json", "clevrer/video_validation", "video", False),
    "Object Interaction": ("object_interaction.json", "star/Charades_v1_480", "video", True),
    "Object Shuffle": ("object_shuffle.json", "perception/videos", "video", False),
    "Moving Direction": ("moving_direction.json", "clevrer/video_validation", "video", False),
    "Action Localization": ("action_localization.json", "sta/sta_video", "video", True),
    "Scene Transition": ("scene_transition.json", "scene_qa/video", "video", False),
    "Action Count": ("action_count.json", "perception/videos", "video", False),
    "Moving Count": ("moving_count.json", "clevrer/video_validation", "video", False),
    "Moving Attribute": ("moving_attribute.json", "clevrer/video_validation", "video", False),
    "State Change": ("state_change.json", "perception/videos", "video", False),
    "Fine-grained Pose": ("fine_grained_pose.json", "nturgbd", "video", False),
    "Character Order": ("character_order.json", "perception/videos", "video", False),
    "Egocentric Navigation": ("egocentric_navigation.json", "vlnqa", "video", False),
    "Episodic Reasoning": ("episodic_reasoning.json", "tvqa/frames_fps3_hq", "frame", True),
    "Counterfactual Inference": ("counterfactual_inference.json", "clevrer/video_validation", "video", False),
}
FRAME_FOLDER_FPS = 3  # read_frame(..., fps=3): TVQA frames were extracted at 3 fps
FRAME_SAMPLING = "get_index"  # recorded in each question's meta and in the run manifest


def selected_tasks(subset: str | None) -> list[str]:
    if not subset:
        return list(TASKS)
    by_stem = {spec[0].removesuffix(".json"): name for name, spec in TASKS.items()}
    chosen = []
    for item in (s.strip() for s in subset.split(",") if s.strip()):
        name = item if item in TASKS else by_stem.get(item)
        if name is None:
            raise DataError(f"unknown MVBench task {item!r}; known: {', '.join(by_stem)}")
        chosen.append(name)
    return chosen


def frame_folder(path: str, num_frames: int, bound: tuple[float, float] | None) -> VideoSource:
    """MVBench's `read_frame`: `max_frame` is the number of entries in the folder, frame indices start at 1 and
    name the files (`00001.jpg`), 3 fps."""
    if not os.path.isdir(path):
        raise DataError(f"MVBench frame folder not found: {path}")
    indices = segment_centre_indices(FRAME_FOLDER_FPS, len(os.listdir(path)), num_frames, bound, first_index=1)
    frames = [os.path.join(path, f"{i:05d}.jpg") for i in indices]
    missing = sorted({f for f in frames if not os.path.isfile(f)})
    if missing:
        raise DataError(f"MVBench frame folder {path}: sampled frame file(s) {missing[:3]} not found (frames are "
                        "named 00001.jpg, 00002.jpg, ... as in MVBench's TVQA dump)")
    return VideoSource(frame_paths=tuple(frames))


def load_mvbench(root: str, options: LoadOptions) -> list[Question]:
    json_dir, video_dir = os.path.join(root, "json"), os.path.join(root, "video")
    if not os.path.isdir(json_dir):
        raise DataError(f"{root} is not an MVBench directory: {json_dir} not found (see docs/eval.md)")
    questions = []
    for task in selected_tasks(options.subset):
        json_name, folder, kind, has_bound = TASKS[task]
        path = os.path.join(json_dir, json_name)
        roots = [os.path.join(video_dir, folder), os.path.join(video_dir, "data0613", folder)]
        for i, row in enumerate(read_json(path)):
            where = f"{path} item {i}"
            candidates = [str(c) for c in require(row, "candidates", where)]
            answer = str(require(row, "answer", where))
            if answer not in candidates:
                raise DataError(f"{where}: answer {answer!r} is not one of the candidates {candidates}")
            media = resolve_file(str(require(row, "video", where)), roots, f"MVBench video of {where}")
            bound = (float(row["start"]), float(row["end"])) if has_bound and "start" in row and "end" in row else None
            meta: dict = {"task": task, "video": row["video"], "frame_sampling": FRAME_SAMPLING,
                          **({"bound": list(bound)} if bound is not None else {})}
            if kind == "frame":
                video = frame_folder(media, options.video_frames, bound)
            else:
                video = VideoSource(path=media, num_frames=options.video_frames, sampling="segment_centres",
                                    bound=bound)
            questions.append(Question(
                id=f"{json_name.removesuffix('.json')}/{i}", benchmark="mvbench", question=str(require(row, "question", where)),
                answer=letter(candidates.index(answer)), choices=candidates, video=video, category=task,
                meta=meta))
    return questions


MVBENCH = register_benchmark(Benchmark(
    name="mvbench", short_name="MVBench", load=load_mvbench, scoring="multiple_choice", video=True,
    frame_sampling=FRAME_SAMPLING,
    paper=PaperNumbers("MVBench-test Acc", rapr=66.95, table1={
        "Pixel-Reasoner (paper)": 67.8, "Qwen2.5-VL (7B, paper)": 63.8, "Warm-Start Model (w/o RL)": 59.0,
        "RL w/o Curiosity": 66.4, "RL w/o Warm-Start": 65.6, "RL w/o Correction-Data": 63.6})))

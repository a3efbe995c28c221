"""DEV ONLY: run the official scoring functions and freeze their outputs as test fixtures (CI never runs this).

    python scripts/freeze_official_scoring.py --pixel-reasoner GIT_DIR --lmms-eval GIT_DIR \
        --ask-anything GIT_DIR --vstar GIT_DIR [--out tests/eval/fixtures/official_scoring.json]

Each GIT_DIR is a clone (or bare snapshot) of TIGER-AI-Lab/Pixel-Reasoner, EvolvingLMMs-Lab/lmms-eval,
OpenGVLab/Ask-Anything and penghao-wu/vstar. The official functions are read from the committed files (`git show
HEAD:path`), cut out by name with `ast` (their modules import torch, Ray, vLLM, ... which we do not need) and
executed unchanged; each one's repository, commit, path and line are recorded next to the values. Needs
math-verify==0.7.0 (the paper's version, see pixel_reasoner/paper_scoring.py). The official functions print
debug lines; they are silenced.

Frozen:
- `rule_reward`: `batch_rule_reward` called as the official eval calls it (EM:1588: `(solutions, gts, eos,
  format_type, executor=None, requires_box=True)`) on edge cases, its correctness value per case;
- `plausible_7b`: the same for every row of bench/data/plausible_7b_predictions.jsonl, with the solution text the
  official code builds (our ChatML rendering, pad tokens removed, then the official
  `extract_qwen_query_and_response`); InfoVQA rows: lmms-eval's `anls` of the last complete box of the eval
  output text as the official dump writes it (`eval_output_text`; the author's extraction step is not public);
- `anls`: lmms-eval's `anls` on edge cases;
- `mvbench_get_index`: `MVBench_dataset.get_index` (mvbench.ipynb) on bounds, frame rates and frame counts;
- `vstar`: where V*'s evaluation takes the first option as the correct one.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import importlib.metadata
import io
import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pixel_reasoner.paper_scoring import MATH_VERIFY_VERSION, eval_output_text  # noqa: E402
from pixel_reasoner.parsing import extract_boxed  # noqa: E402
from pixel_reasoner.protocol.chatml import IM_END, render_messages  # noqa: E402

EM = "curiosity_driven_rl/openrlhf/trainer/ppo_utils/experience_maker.py"
PLAUSIBLE = "bench/data/plausible_7b_predictions.jsonl"

RULE_REWARD_CASES = [  # (solution text as the official code sees it, ground truth as in the parquet)
    # multiple choice: the gold is the option letter
    ("\\boxed{B}<|im_end|>", "B"), ("\\boxed{b}<|im_end|>", "B"), ("\\boxed{ B }<|im_end|>", "B"),
    ("\\boxed{(B)}<|im_end|>", "B"), ("\\boxed{\\text{B}}<|im_end|>", "B"), ("\\boxed{\\textbf{B}}<|im_end|>", "B"),
    ("\\boxed{B: Sheep}<|im_end|>", "B"), ("\\boxed{B. Sheep}<|im_end|>", "B"), ("\\boxed{(B) Sheep}<|im_end|>", "B"),
    ("\\boxed{Option B}<|im_end|>", "B"), ("\\boxed{B.}<|im_end|>", "B"), ("\\boxed{Sheep}<|im_end|>", "B"),
    ("\\boxed{A}<|im_end|>", "B"), ("The answer is B.<|im_end|>", "B"), ("Answer: B<|im_end|>", "B"),
    ("Best option: (B)<|im_end|>", "B"), ("<answer>B</answer><|im_end|>", "B"),
    ("<answer>\nB\n</answer><|im_end|>", "B"),
    ("<answer>A</answer> then <answer>B</answer><|im_end|>", "B"),
    ("\\boxed{A} no, wait: \\boxed{B}<|im_end|>", "B"), ("\\boxed{B} no, wait: \\boxed{A}<|im_end|>", "B"),
    ("\\boxed{B", "B"), ("so the answer is \\boxed{B", "B"),
    ("first \\boxed{B} then a call\n<tool_call>\n{}\n</tool_call><|im_end|>\n<|im_start|>user\n\nHere is the cropped "
     "image (Image Size: 448x336):<|vision_start|><|vision_end|><|im_end|>\nIt is B.<|im_end|>", "B"),
    ("\\boxed{B}<|im_end|>", "b"), ("\\boxed{C}<|im_end|>", "c"),
    # counting: the gold is the number
    ("\\boxed{3}<|im_end|>", "3"), ("\\boxed{3}<|im_end|>", 3), ("\\boxed{three}<|im_end|>", "3"),
    ("\\boxed{3.}<|im_end|>", "3"), ("\\boxed{-3}<|im_end|>", "3"), ("\\boxed{3 or 4}<|im_end|>", "3"),
    ("\\boxed{3.0}<|im_end|>", "3"), ("\\boxed{3 people}<|im_end|>", "3"),
    ("\\boxed{There are 3 apples}<|im_end|>", "3"),
    ("\\boxed{none}<|im_end|>", "0"), ("\\boxed{None}<|im_end|>", "0"), ("\\boxed{0}<|im_end|>", "0"),
    ("There are 3 apples.<|im_end|>", "3"), ("I count 3 apples and 2 pears.<|im_end|>", "3"),
    ("Answer: 7<|im_end|>", "7"), ("There are \\boxed{4} horses.<|im_end|>", "4"), ("\\boxed{4}", "4"),
    ("(image size: 448x336): \\boxed{2", "2"), ("\\boxed{twelve}<|im_end|>", "12"), ("\\boxed{12}<|im_end|>", "12"),
    # free-form answers and the RL reward's special cases (lists, %, multi-span, unit words)
    ("\\boxed{15\\%}<|im_end|>", "15"), ("\\boxed{15}<|im_end|>", "15%"), ("\\boxed{15}<|im_end|>", ["15%"]),
    ("\\boxed{15\\%}<|im_end|>", ["15%"]), ("\\boxed{15 %}<|im_end|>", "15%"), ("\\boxed{1,000}<|im_end|>", "1000"),
    ("\\boxed{1000}<|im_end|>", "1,000"), ("\\boxed{$5}<|im_end|>", "5"), ("\\boxed{3.0}<|im_end|>", "3"),
    ("\\boxed{share contacts}<|im_end|>", ["share contacts"]),
    ("\\boxed{Share contacts via NHS Test and Trace}<|im_end|>", ["\\boxed{share contacts}"]),
    ("\\boxed{Troubles, The Siege of Krishnapur}<|im_end|>", ["troubles, the siege of krishnapur"]),
    ("\\boxed{es, the siege of krishnapu}<|im_end|>", "troubles, the siege of krishnapur"),
    ("\\boxed{India, China}<|im_end|>", ["india, china", "china, india"]),
    ("\\boxed{New York}<|im_end|>", ["new york"]), ("\\boxed{\\text{New York}}<|im_end|>", ["New York"]),
    ("\\boxed{20 minutes}<|im_end|>", "20"), ("\\boxed{5 cm}<|im_end|>", "5"), ("\\boxed{acme}<|im_end|>", "ae"),
    ("\\boxed{\\frac{1}{2}}<|im_end|>", "0.5"), ("\\boxed{\\dfrac{1}{2}}<|im_end|>", "1/2"),
    ("no answer at all<|im_end|>", "B"), ("", "3"),
]

ANLS_CASES = [  # (prediction, ground truths)
    ("", [""]), ("", ["paris"]), ("paris", [""]), ("Paris", ["paris"]), ("  Hello   World ", ["hello world"]),
    ("abcx", ["abcd"]), ("abxy", ["abcd"]), ("ab", ["abcd"]), ("abc", ["abcd"]), ("abcdxyz", ["abcdefg"]),
    ("seed 20", ["seed 200", "200"]), ("wrong", ["nope", "wrang"]), ("12\\%", ["12%"]), ("12%", ["12%"]),
    ("\\text{New York}", ["new york"]), ("\"Stay home\"", ["stay home"]), ("2,345", ["2345"]),
    ("Straße", ["strasse"]), ("a  b", ["ab"]), ("ab", ["a  b"]), (" ab", ["abc"]), ("abc ", ["ab"]),
    ("new  york  city", ["new york"]), ("1.5 million", ["1.5 million", "1,500,000"]),
]

GET_INDEX_CASES = [  # (bound, fps, max_frame, first_idx, num_segments)
    (None, 30.0, 299, 0, 16), (None, 25.0, 47, 0, 16), (None, 29.97, 1000, 0, 8), (None, 30.0, 10, 0, 16),
    ((3.2, 9.1), 30.0, 899, 0, 16), ((0.0, 2.5), 24.0, 600, 0, 16), ((10.0, 12.0), 30.0, 299, 0, 16),
    ((1.25, 1.75), 30.0, 299, 0, 16), (None, 3, 120, 1, 16), ((4.5, 20.2), 3, 180, 1, 16),
    ((0.0, 100.0), 3, 90, 1, 16), ((2.0, 3.0), 3, 30, 1, 16),
]


def git_show(repo: str, path: str) -> str:
    return subprocess.run(["git", "-C", repo, "show", f"HEAD:{path}"], capture_output=True, text=True,
                          check=True).stdout


def commit(repo: str) -> str:
    return subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def cut(source: str, names: list[str]) -> dict[str, tuple[int, str]]:
    """(line, source) of each top-level function or assignment named in `names`."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name in names:
            found[node.name] = (node.lineno, ast.get_source_segment(source, node))
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id in names:
            found[node.targets[0].id] = (node.lineno, ast.get_source_segment(source, node))
    missing = sorted(set(names) - set(found))
    if missing:
        raise SystemExit(f"not found in the official source: {missing}")
    return found


def source_of(repo: str, name: str, path: str, line: int) -> dict:
    return {"repo": name, "commit": commit(repo), "path": path, "line": line}


def load_pixel_reasoner(repo: str) -> tuple[dict, dict]:
    from math_verify import parse, verify

    names = ["extract_qwen_query_and_response", "do_verify", "ans_indicator", "endstr", "normalize_answer",
             "handle_boxed", "rule_reward", "batch_rule_reward"]
    parts = cut(git_show(repo, EM), names)
    namespace = {"parse": parse, "verify": verify, "re": re}
    for n in names:
        exec(parts[n][1], namespace)
    sources = {f"pixel_reasoner.{n}": source_of(repo, "TIGER-AI-Lab/Pixel-Reasoner", EM, parts[n][0])
               for n in ("extract_qwen_query_and_response", "do_verify", "normalize_answer", "handle_boxed",
                         "rule_reward", "batch_rule_reward")}
    calls = subprocess.run(["git", "-C", repo, "grep", "-n", "self.rule_reward_func(solutions", "HEAD", "--", EM],
                           capture_output=True, text=True, check=True).stdout.split(":")
    sources["pixel_reasoner.eval_call"] = source_of(repo, "TIGER-AI-Lab/Pixel-Reasoner", EM, int(calls[2]))
    return namespace, sources


def official_rule_reward(namespace: dict, solution: str, answer) -> float:
    with contextlib.redirect_stdout(io.StringIO()):
        return float(namespace["batch_rule_reward"]([solution], [answer], "<|im_end|>", "", None, True)[0][-1])


def load_lmms_eval(repo: str) -> tuple[dict, dict]:
    path = "lmms_eval/api/metrics.py"
    parts = cut(git_show(repo, path), ["levenshtein_distance", "anls"])
    namespace: dict = {}
    for n in ("levenshtein_distance", "anls"):
        exec(parts[n][1], namespace)
    return namespace, {f"lmms_eval.{n}": source_of(repo, "EvolvingLMMs-Lab/lmms-eval", path, parts[n][0])
                       for n in ("levenshtein_distance", "anls")}


def load_mvbench_get_index(repo: str) -> tuple[object, dict]:
    path = "video_chat2/mvbench.ipynb"
    notebook = json.loads(git_show(repo, path))
    for index, cell in enumerate(notebook["cells"]):
        source = "".join(cell["source"])
        if "class MVBench_dataset" in source:
            cls = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef))
            method = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "get_index")
            namespace = {"np": np}
            exec(textwrap_dedent(ast.get_source_segment(source, method)), namespace)
            where = {"repo": "OpenGVLab/Ask-Anything", "commit": commit(repo), "path": path,
                     "line": f"cell {index}, line {method.lineno}"}
            return namespace["get_index"], where
    raise SystemExit("MVBench_dataset not found in mvbench.ipynb")


def textwrap_dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(" " * 4 + text)


def official_solution(namespace: dict, row: dict) -> str:
    """The official pipeline on a prediction row: render, drop pad tokens, `extract_qwen_query_and_response`."""
    rendered = render_messages(row["messages"]).removesuffix(IM_END + "\n")
    if row.get("termination") == "answer":
        rendered += IM_END
    rendered = rendered.replace("<|image_pad|>", "").replace("<|video_pad|>", "")
    return namespace["extract_qwen_query_and_response"](rendered)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("pixel-reasoner", "lmms-eval", "ask-anything", "vstar"):
        parser.add_argument(f"--{name}", required=True, help=f"git directory of the {name} repository")
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "eval", "fixtures", "official_scoring.json"))
    args = parser.parse_args()
    installed = importlib.metadata.version("math-verify")
    if installed != MATH_VERIFY_VERSION:
        raise SystemExit(f"math-verify {installed} is installed; the fixtures need {MATH_VERIFY_VERSION}")

    pr, sources = load_pixel_reasoner(args.pixel_reasoner)
    lmms, lmms_sources = load_lmms_eval(args.lmms_eval)
    get_index, get_index_source = load_mvbench_get_index(args.ask_anything)
    sources.update(lmms_sources, **{"mvbench.get_index": get_index_source})
    vstar_path = "vstar_bench_eval.py"
    vstar_lines = git_show(args.vstar, vstar_path).splitlines()
    correct_line = next(i + 1 for i, line in enumerate(vstar_lines) if "correct = 1 if option_chosen==0" in line)
    sources["vstar.correct_is_first_option"] = {"repo": "penghao-wu/vstar", "commit": commit(args.vstar),
                                                 "path": vstar_path, "line": correct_line}

    rule_cases = [{"solution": s, "answer": a, "reward": official_rule_reward(pr, s, a)} for s, a in RULE_REWARD_CASES]
    anls_cases = [{"prediction": p, "answers": g, "anls": lmms["anls"](g, [p])["anls"]} for p, g in ANLS_CASES]
    index_cases = []
    for bound, fps, max_frame, first_idx, segments in GET_INDEX_CASES:
        dataset = SimpleNamespace(num_segments=segments)
        indices = get_index(dataset, bound, fps, max_frame, first_idx=first_idx)
        index_cases.append({"bound": bound, "fps": fps, "max_frame": max_frame, "first_idx": first_idx,
                            "num_segments": segments, "indices": [int(i) for i in indices]})
    with open(os.path.join(ROOT, PLAUSIBLE), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(ROOT, PLAUSIBLE), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    plausible = []
    for row in rows:
        if row["benchmark"] == "infovqa":
            prediction = extract_boxed(eval_output_text(row["messages"])) or ""
            plausible.append({"id": row["id"], "prediction": prediction,
                              "score": lmms["anls"](row["answer"], [prediction])["anls"]})
        else:
            solution = official_solution(pr, row)
            plausible.append({"id": row["id"], "solution": solution,
                              "score": 1.0 if official_rule_reward(pr, solution, row["answer"]) > 0 else 0.0})
    fixture = {"generated_by": "scripts/freeze_official_scoring.py", "math_verify": installed, "sources": sources,
               "rule_reward": rule_cases, "anls": anls_cases, "mvbench_get_index": index_cases,
               "plausible_7b": {"file": PLAUSIBLE, "sha256": digest, "rows": plausible}}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(fixture, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {args.out}: {len(rule_cases)} rule_reward, {len(anls_cases)} anls, {len(index_cases)} get_index, "
          f"{len(plausible)} plausible rows")


if __name__ == "__main__":
    main()

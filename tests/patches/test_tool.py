"""`python -m patches apply` on the real OpenRLHF 0.11.2 wheel source: detection, dry run, all-or-nothing
checks, idempotence, refusals (version mismatch, dirty git tree, local edits, missing git) and exact reversal."""
from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from patches.patchfile import read_patch
from patches.upstreams import PATCH_SETS, load_patch_set

REPO = pathlib.Path(__file__).resolve().parents[2]
OPENRLHF_VERSION = "0.11.2"
PATCHED_FILE = "openrlhf/cli/train_ppo_ray.py"


def sources_root(wheel_tree: pathlib.Path) -> pathlib.Path:
    return wheel_tree / f"openrlhf-{OPENRLHF_VERSION}.data" / "purelib"


def git(cwd: pathlib.Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], cwd=cwd,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def tree_digest(root: pathlib.Path) -> dict[str, str]:
    """Every file (and empty directory) under root -> content hash; .git excluded."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        if path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir() and not any(path.iterdir()):
            out[rel + "/"] = "empty dir"
    return out


def installed_layout(wheel_tree: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    """What pip installs (openrlhf/, tests/ and the .dist-info side by side): site-packages' layout."""
    dest.mkdir(parents=True)
    for child in sources_root(wheel_tree).iterdir():
        shutil.copytree(child, dest / child.name)
    shutil.copytree(wheel_tree / f"openrlhf-{OPENRLHF_VERSION}.dist-info", dest / f"openrlhf-{OPENRLHF_VERSION}.dist-info")
    return dest


def test_shipped_patches_are_described_like_git_counts_them():
    for spec in PATCH_SETS:
        patch_set = load_patch_set(spec)  # also checks that no upstream file belongs to two patches
        for patch in patch_set.patches:
            numstat = subprocess.run(["git", "apply", "--numstat", patch.path], capture_output=True, text=True,
                                     check=True).stdout
            expected = {line.split("\t")[2]: (int(line.split("\t")[0]), int(line.split("\t")[1]))
                        for line in numstat.splitlines()}
            assert {c.path: (c.added, c.removed) for c in patch.changes} == expected
    openrlhf = load_patch_set(PATCH_SETS[0])
    assert [c.path for p in openrlhf.patches for c in p.changes] == [
        PATCHED_FILE, "openrlhf/models/actor.py", "openrlhf/trainer/ppo_trainer_async.py",
        "openrlhf/trainer/ray/vllm_engine.py"]
    assert read_patch(openrlhf.patches[0].path).hunks == 13


def test_wheel_of_this_project_ships_every_patch_file(tmp_path):
    """setup.py's package_data `patches/**/*.patch` puts every patch into the built wheel."""
    source = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for rel in files:
        if (REPO / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, source / rel)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", "-q", "-w", str(tmp_path / "dist")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("pixel_reasoner-*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".patch")}
    expected = {p.relative_to(REPO).as_posix() for p in (REPO / "patches").rglob("*.patch")}
    assert shipped == expected and len(expected) == 3


def test_dry_run_checks_every_hunk_and_changes_nothing(patches_cli, wheel_tree):
    before = tree_digest(wheel_tree)
    done = patches_cli("apply", "--target", str(wheel_tree), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert f"openrlhf {OPENRLHF_VERSION} at {sources_root(wheel_tree)}" in done.stdout
    assert "dry run: would apply" in done.stdout
    assert f"{PATCHED_FILE}: 6 hunk(s), +18 -0" in done.stdout
    assert "openrlhf/trainer/ppo_trainer_async.py: 3 hunk(s), +6 -2" in done.stdout
    assert "openrlhf/trainer/ray/vllm_engine.py: 2 hunk(s), +3 -0" in done.stdout
    assert "openrlhf/models/actor.py: 2 hunk(s), +5 -0" in done.stdout
    assert "not a git work tree" in done.stdout
    assert tree_digest(wheel_tree) == before


def test_apply_twice_is_a_no_op_and_reverse_restores_the_exact_tree(patches_cli, unzip_openrlhf, wheel_tree,
                                                                    tmp_path):
    pristine = tree_digest(unzip_openrlhf(tmp_path / "pristine"))
    target = sources_root(wheel_tree) / PATCHED_FILE

    first = patches_cli("apply", "--target", str(wheel_tree))
    assert first.returncode == 0, first.stderr
    assert "applied:" in first.stdout and f"{PATCHED_FILE}: 6 hunk(s)" in first.stdout
    patched = target.read_bytes()
    assert b"pixel_reasoner.prepare_run(args)" in patched and b"pixel_reasoner.add_arguments(parser)" in patched

    second = patches_cli("apply", "--target", str(wheel_tree))
    assert second.returncode == 0, second.stderr
    assert "nothing to do: every patch is already applied" in second.stdout
    assert target.read_bytes() == patched

    reverse = patches_cli("apply", "--target", str(wheel_tree), "--reverse")
    assert reverse.returncode == 0, reverse.stderr
    assert "reversed:" in reverse.stdout
    assert tree_digest(wheel_tree) == pristine

    again = patches_cli("apply", "--target", str(wheel_tree), "--reverse")
    assert again.returncode == 0 and "nothing to do: no patch is applied" in again.stdout


@pytest.mark.parametrize("tamper, message", [
    ("metadata", "openrlhf 0.11.1 at"),
    ("version_txt", "the version sources disagree"),
])
def test_version_mismatch_is_refused_before_anything_changes(patches_cli, wheel_tree, tamper, message):
    if tamper == "metadata":
        metadata = wheel_tree / f"openrlhf-{OPENRLHF_VERSION}.dist-info" / "METADATA"
        metadata.write_text(metadata.read_text().replace(f"Version: {OPENRLHF_VERSION}", "Version: 0.11.1"))
    else:
        (wheel_tree / "version.txt").write_text("0.12.0\n")
    before = tree_digest(wheel_tree)
    done = patches_cli("apply", "--target", str(wheel_tree))
    assert done.returncode == 1
    assert message in done.stderr and "refused" in done.stderr
    if tamper == "metadata":
        assert f"supported openrlhf version(s): {OPENRLHF_VERSION}" in done.stderr
    assert tree_digest(wheel_tree) == before


def test_a_git_checkout_layout_is_detected_from_version_txt(patches_cli, wheel_tree, tmp_path):
    """A checkout of the git tag: version.txt (read by upstream's setup.py) next to openrlhf/."""
    checkout = tmp_path / "OpenRLHF"
    shutil.copytree(sources_root(wheel_tree) / "openrlhf", checkout / "openrlhf")
    (checkout / "version.txt").write_text(f"{OPENRLHF_VERSION}\n")
    done = patches_cli("apply", "--target", str(checkout))
    assert done.returncode == 0, done.stderr
    assert f"(version.txt: {OPENRLHF_VERSION})" in done.stdout


def test_not_an_upstream_checkout_is_refused(patches_cli, tmp_path):
    done = patches_cli("apply", "--target", str(tmp_path))
    assert done.returncode == 1
    assert "neither an OpenRLHF checkout" in done.stderr
    done = patches_cli("apply", "--target", str(tmp_path / "missing"))
    assert done.returncode == 1 and "no such directory" in done.stderr


def test_dirty_git_tree_is_refused_clean_and_committed_trees_work(patches_cli, wheel_tree, tmp_path):
    fork = installed_layout(wheel_tree, tmp_path / "fork")
    git(fork, "init", "-q")
    git(fork, "add", "-A")
    git(fork, "commit", "-qm", "upstream 0.11.2")
    init = fork / "openrlhf" / "__init__.py"
    init.write_text(init.read_text() + "# local experiment\n")
    before = tree_digest(fork)

    done = patches_cli("apply", "--target", str(fork))
    assert done.returncode == 1
    assert "uncommitted changes to 1 tracked file(s)" in done.stderr and "openrlhf/__init__.py" in done.stderr
    assert tree_digest(fork) == before

    git(fork, "checkout", "--", "openrlhf/__init__.py")
    done = patches_cli("apply", "--target", str(fork))
    assert done.returncode == 0, done.stderr
    assert git(fork, "status", "--porcelain").split() == [
        "M", PATCHED_FILE, "M", "openrlhf/models/actor.py", "M", "openrlhf/trainer/ppo_trainer_async.py",
        "M", "openrlhf/trainer/ray/vllm_engine.py"]
    git(fork, "commit", "-qam", "Pixel Reasoner patches")  # a fork keeps the patched code committed
    assert "nothing to do" in patches_cli("apply", "--target", str(fork)).stdout

    reverse = patches_cli("apply", "--target", str(fork), "--reverse")
    assert reverse.returncode == 0, reverse.stderr
    assert git(fork, "diff", "HEAD~1", "--stat") == ""  # back to upstream's file, byte for byte


def test_allow_dirty_applies_next_to_local_changes(patches_cli, wheel_tree, tmp_path):
    fork = installed_layout(wheel_tree, tmp_path / "fork")
    git(fork, "init", "-q")
    git(fork, "add", "-A")
    git(fork, "commit", "-qm", "upstream")
    (fork / "openrlhf" / "__init__.py").write_text("# local\n")
    done = patches_cli("apply", "--target", str(fork), "--allow-dirty")
    assert done.returncode == 0, done.stderr
    assert sorted(git(fork, "status", "--porcelain").split()) == sorted(
        ["M"] * 5 + [PATCHED_FILE, "openrlhf/__init__.py", "openrlhf/models/actor.py",
                     "openrlhf/trainer/ppo_trainer_async.py", "openrlhf/trainer/ray/vllm_engine.py"])


def test_local_edits_where_a_hunk_goes_refuse_the_whole_set(patches_cli, wheel_tree):
    target = sources_root(wheel_tree) / PATCHED_FILE
    text = target.read_text()
    target.write_text(text.replace("    # init PPO trainer (Single controller)\n", "    # the single controller\n"))
    before = tree_digest(wheel_tree)
    done = patches_cli("apply", "--target", str(wheel_tree))
    assert done.returncode == 1
    assert "neither apply nor are already applied" in done.stderr
    assert PATCHED_FILE in done.stderr  # git's own message names the file and line
    assert tree_digest(wheel_tree) == before


def test_missing_git_is_a_clear_error(wheel_tree, tmp_path):
    bare_path = tmp_path / "bin"
    bare_path.mkdir()
    env = dict(os.environ, PATH=str(bare_path), PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "patches", "apply", "--target", str(wheel_tree)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "git is not installed" in done.stderr and "apt-get install git" in done.stderr


def test_list_names_supported_versions(patches_cli):
    done = patches_cli("list")
    assert done.returncode == 0
    assert f"openrlhf {OPENRLHF_VERSION}" in done.stdout
    assert "open-r1 0.1.0.dev0, checked against commit 1416fa0cf21595d2083b399a2a0bbddd7f6e9563" in done.stdout


def test_a_copy_vendored_inside_another_repository_is_patched_in_place(patches_cli, wheel_tree, tmp_path):
    """Plain `git apply` run in a sub-directory of a repository silently skips paths outside it (exit 0, nothing
    changed); the tool patches the target itself, and the enclosing repository's state still guards it."""
    monorepo = tmp_path / "monorepo"
    vendored = installed_layout(wheel_tree, monorepo / "third_party" / "openrlhf")
    git(monorepo, "init", "-q")
    git(monorepo, "add", "-A")
    git(monorepo, "commit", "-qm", "vendor openrlhf 0.11.2")
    (vendored / "openrlhf" / "__init__.py").write_text("# local\n")
    refused = patches_cli("apply", "--target", str(vendored))
    assert refused.returncode == 1 and "third_party/openrlhf/openrlhf/__init__.py" in refused.stderr

    git(monorepo, "checkout", "--", ".")
    done = patches_cli("apply", "--target", str(vendored))
    assert done.returncode == 0, done.stderr
    assert git(monorepo, "status", "--porcelain").split() == [
        "M", f"third_party/openrlhf/{PATCHED_FILE}", "M", "third_party/openrlhf/openrlhf/models/actor.py",
        "M", "third_party/openrlhf/openrlhf/trainer/ppo_trainer_async.py",
        "M", "third_party/openrlhf/openrlhf/trainer/ray/vllm_engine.py"]

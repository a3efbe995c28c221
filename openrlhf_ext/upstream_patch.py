"""Is the OpenRLHF that Python imports patched with our hooks (`patches/openrlhf/<version>`)?

Our RL stage plugs into OpenRLHF 0.11.2 through its documented agent interface (`--train.agent_func_path`) and
through a few hook calls that the maintained patch adds to upstream's own code (`docs/patches.md`): the trainer
and rollout actor classes upstream instantiates, our flags in its parser, validation before it starts anything.
`scripts/install.sh` applies the patch to the installed OpenRLHF; the launcher refuses to start without it and
says how to apply it.
"""
from __future__ import annotations

import importlib.util
import os

from pixel_reasoner.errors import ConfigError


def openrlhf_root() -> str:
    """The directory holding the `openrlhf` package Python imports (site-packages, a checkout, a patched copy)."""
    spec = importlib.util.find_spec("openrlhf")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("OpenRLHF is not installed: run `bash scripts/install.sh` (or `pip install --no-deps "
                          "openrlhf==0.11.2` and then `python -m patches apply --target <its site-packages>`)")
    return os.path.dirname(os.path.abspath(list(spec.submodule_search_locations)[0]))


def patch_state(root: str | None = None) -> tuple[bool, str]:
    """(every patch of the set for that OpenRLHF's version is applied, what was found)."""
    from patches.apply import APPLIED, patch_states
    from patches.engine import EngineError, GitApply
    from patches.upstreams import TargetError, detect, patch_set_for

    root = root or openrlhf_root()
    if os.path.basename(root) == "purelib":  # a wheel unzipped as is: its version is in the .dist-info beside
        root = os.path.dirname(os.path.dirname(root))
    try:
        checkout = detect(root)
        states = patch_states(GitApply(checkout.root), patch_set_for(checkout).patches)
    except (TargetError, EngineError) as err:
        return False, str(err)
    missing = [s.patch.name for s in states if s.state != APPLIED]
    if missing:
        return False, f"{checkout.describe()}: not applied: {', '.join(missing)}"
    return True, checkout.describe()


def require_patched() -> str:
    """The patched OpenRLHF's description, or a ConfigError saying how to patch it."""
    applied, found = patch_state()
    if not applied:
        root = openrlhf_root()
        raise ConfigError(f"the OpenRLHF that Python imports is not patched with Pixel Reasoner's hooks ({found}). "
                          f"Apply them once: `python -m patches apply --target {root}` (scripts/install.sh does "
                          "this), then run again; docs/patches.md says what the patch changes")
    return found


def patched_copy(cache_root: str) -> str:
    """A patched copy of the installed OpenRLHF under `cache_root` (made once per patch content), for environments
    whose site-packages must not change (a shared or read-only venv): put the returned directory first on
    PYTHONPATH. Returns the installed OpenRLHF's root when it is patched already."""
    import glob
    import hashlib
    import shutil

    from patches.apply import run
    from patches.upstreams import detect, patch_set_for

    root = openrlhf_root()
    if patch_state(root)[0]:
        return root
    patch_set = patch_set_for(detect(root))
    digest = hashlib.sha1(b"".join(open(p.path, "rb").read() for p in patch_set.patches)).hexdigest()[:12]
    target = os.path.join(os.path.abspath(cache_root), f"openrlhf-{patch_set.spec.version}-{digest}")
    if os.path.isdir(target) and patch_state(target)[0]:
        return target
    scratch = f"{target}.tmp{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    shutil.copytree(os.path.join(root, "openrlhf"), os.path.join(scratch, "openrlhf"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    for info in glob.glob(os.path.join(root, f"openrlhf-{patch_set.spec.version}.dist-info")):
        shutil.copytree(info, os.path.join(scratch, os.path.basename(info)))
    run(scratch, say=lambda line: None)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(scratch, target)
    return target


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m openrlhf_ext.upstream_patch",
                                     description="Check the imported OpenRLHF for our patch, or make a patched copy.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="exit 0 when the OpenRLHF that Python imports is patched")
    copy = sub.add_parser("copy", help="print the directory of a patched copy (put it first on PYTHONPATH)")
    copy.add_argument("--to", required=True, help="directory to keep patched copies in")
    args = parser.parse_args(argv)
    if args.command == "check":
        applied, found = patch_state()
        print(("patched: " if applied else "NOT patched: ") + found)
        return 0 if applied else 1
    print(patched_copy(args.to))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Apply or reverse our patch set on an upstream checkout: detect, check everything, then change or refuse.

Order of decisions (each refusal names what to do instead; nothing is written before the last step):
1. git (the engine) is available; the target is a known upstream at a supported version (`upstreams`).
2. The state of every patch: `applied` (its reverse applies), `unapplied` (it applies) or `conflict` (neither:
   the file differs from what the patch expects). Any conflict refuses, with git's explanation.
3. Nothing to do (all patches already in the wanted state): a no-op, said so; applying twice is harmless.
4. Applying onto a git work tree with uncommitted changes to tracked files refuses (`allow_dirty` overrides):
   our changes would mix with the user's. Reversing needs no clean tree: it only touches our hunks, checked first.
5. One `git apply --check` over all patches still to do, then (unless a dry run) one `git apply`, which is
   itself all or nothing; afterwards every patch must be in the wanted state.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from patches.engine import GitApply, tracked_changes
from patches.patchfile import PatchFile
from patches.upstreams import Checkout, PatchSet, detect, patch_set_for

APPLIED, UNAPPLIED, CONFLICT = "applied", "unapplied", "conflict"
NEXT_STEPS = {
    "openrlhf": "next: python -m openrlhf.cli.train_ppo_ray --pr.enable [--pr.dry_run] ... (docs/patches.md)",
    "open-r1": "next: accelerate launch --config_file=recipes/accelerate_configs/zero2.yaml src/open_r1/sft.py "
               "--config recipes/Qwen2.5-VL-7B-Instruct/sft/config_pixel_reasoner.yaml (docs/patches.md)",
}


class Refused(RuntimeError):
    """The target is not in a state the patches can be applied to / reversed from; nothing was changed."""


@dataclass(frozen=True)
class PatchState:
    patch: PatchFile
    state: str
    message: str  # git's explanation for a conflict


@dataclass(frozen=True)
class Outcome:
    checkout: Checkout
    patch_set: PatchSet
    changed: tuple[PatchFile, ...]  # what was (or, in a dry run, would be) applied or reversed
    dry_run: bool
    reverse: bool


def patch_states(engine: GitApply, patches: Sequence[PatchFile]) -> list[PatchState]:
    states = []
    for patch in patches:
        forward = engine.check([patch])
        if forward.ok:
            states.append(PatchState(patch, UNAPPLIED, ""))
        elif engine.check([patch], reverse=True).ok:
            states.append(PatchState(patch, APPLIED, ""))
        else:
            states.append(PatchState(patch, CONFLICT, forward.message))
    return states


def report_lines(patches: Sequence[PatchFile]) -> list[str]:
    lines = []
    for patch in patches:
        lines.append(f"  {patch.name}")
        lines += [f"    {change.describe()}" for change in patch.changes]
    files = sum(len(p.changes) for p in patches)
    lines.append(f"  total: {len(patches)} patch(es), {files} file(s), {sum(p.hunks for p in patches)} hunk(s)")
    return lines


def run(target: str, dry_run: bool = False, reverse: bool = False, allow_dirty: bool = False,
        say: Callable[[str], None] = print) -> Outcome:
    """Apply (or reverse) the fitting patch set on `target`. Raises `Refused`, `upstreams.TargetError` or
    `engine.EngineError` without having changed anything; `say` receives the human report line by line."""
    checkout = detect(target)
    engine = GitApply(checkout.root)
    patch_set = patch_set_for(checkout)
    spec = patch_set.spec
    say(f"target: {checkout.describe()}")
    say(f"patches: {spec.upstream} {spec.version} ({patch_set.directory}): {spec.description}")
    if spec.checked_commit:
        here = checkout.commit or "unknown (not the root of a git repository)"
        say(f"  checked against upstream commit {spec.checked_commit}; this checkout: {here}")

    wanted = UNAPPLIED if reverse else APPLIED
    states = patch_states(engine, patch_set.patches)
    conflicts = [s for s in states if s.state == CONFLICT]
    if conflicts:
        details = "\n".join(f"  {s.patch.name}:\n    " + s.message.replace("\n", "\n    ") for s in conflicts)
        raise Refused(f"{len(conflicts)} patch(es) neither apply nor are already applied (the files differ from "
                      f"what the patches expect; local edits, or another upstream commit?); nothing was changed:\n"
                      f"{details}")
    todo = [s.patch for s in states if s.state != wanted]
    done_already = [s.patch.name for s in states if s.state == wanted]
    if not todo:
        state = "no patch is applied" if reverse else "every patch is already applied"
        say(f"nothing to do: {state} ({', '.join(done_already)}); the checkout was not changed")
        return Outcome(checkout, patch_set, (), dry_run, reverse)
    if done_already:
        say(f"  {'not applied (nothing to reverse)' if reverse else 'already applied'}: {', '.join(done_already)}")

    if not reverse:
        dirty = tracked_changes(checkout.root)
        if dirty is None:
            say("  not a git work tree: no tree state to check (the patches' own checks still apply)")
        elif dirty and not allow_dirty:
            shown = "\n".join(f"  {path}" for path in dirty[:20])
            raise Refused(f"{checkout.root} has uncommitted changes to {len(dirty)} tracked file(s); commit or "
                          f"stash them first (or pass --allow-dirty), so that the patches' changes stay separate "
                          f"from yours. Nothing was changed.\n{shown}")

    combined = engine.check(todo, reverse=reverse)
    if not combined.ok:
        raise Refused(f"the patches do not apply together; nothing was changed:\n{combined.message}")
    verb = "reverse" if reverse else "apply"
    if dry_run:
        say(f"dry run: would {verb} (every hunk checked; nothing was changed):")
        for line in report_lines(todo):
            say(line)
        return Outcome(checkout, patch_set, tuple(todo), dry_run, reverse)

    engine.apply(todo, reverse=reverse)
    after = patch_states(engine, todo)
    wrong = [s.patch.name for s in after if s.state != wanted]
    if wrong:
        raise Refused(f"after git apply, {wrong} are not {wanted}: inspect {checkout.root}")
    say(f"{'reversed' if reverse else 'applied'}:")
    for line in report_lines(todo):
        say(line)
    if not reverse:
        say(NEXT_STEPS[spec.upstream])
    return Outcome(checkout, patch_set, tuple(todo), dry_run, reverse)


"""One RL step's rewards, completed in the controller: the group reward terms added on complete query groups.

The agent has scored every sample term where the sample was made (`reward` = the sum of their contributions, each
logged as `reward/<name>`); the controller sees the whole step, so it adds the group terms (the curiosity bonus):
samples [k*n, (k+1)*n) of the step, in rollout order, are the n responses to query k. What it needs of a sample
is its logged outcome (`SampleOutcome.from_logs`). Pure numpy: the trainer feeds it arrays and writes the result
back into OpenRLHF's experiences.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from pixel_reasoner.rewards import GroupRewardTerm, SampleOutcome
from pixel_reasoner.rewards.shaping import ActiveTerm, group_rewards


@dataclass
class StepRewards:
    """Per sample, in rollout order: the reward and every term's contribution; the outcomes when logged."""

    group_size: int
    rewards: np.ndarray  # the agent's (sample terms) + the group terms
    terms: dict[str, np.ndarray]  # `reward/<name>` -> weight * value, every term
    outcomes: list[SampleOutcome] | None  # None when the samples carry no outcome logs (an agent of your own)

    def _groups(self, values: np.ndarray) -> np.ndarray:
        return values.reshape(-1, self.group_size)

    def uniform_share(self, values: np.ndarray, tolerance: float) -> float:
        """Share of groups whose values are all equal (max - min <= tolerance): zero advantage under GRPO."""
        return float(np.mean(np.ptp(self._groups(values), axis=1) <= tolerance))

    def pixel_reasoning(self) -> np.ndarray | None:
        """1_PR(y) per sample: an operation executed (what RaPR counts)."""
        if self.outcomes is None:
            return None
        return np.array([o.executed_operation for o in self.outcomes], dtype=bool)

    def stats(self, uniform_tolerance: float) -> dict[str, float]:
        """Per-step numbers to log: each term's mean and nonzero share, RaPR, and the paper's Fig. 9 curve (the
        share of reward-uniform groups) before and after shaping."""
        out = {"reward/total_mean": float(self.rewards.mean()),
               "ssr/reward_uniform_group_ratio": self.uniform_share(self.rewards, uniform_tolerance)}
        for key, values in self.terms.items():
            out[f"{key}_mean"] = float(values.mean())
            out[f"{key}_nonzero_share"] = float(np.mean(values != 0))
        if self.outcomes is not None:
            used = self.pixel_reasoning()
            requested = np.array([o.requested_operation for o in self.outcomes], dtype=bool)
            correct = np.array([o.correct for o in self.outcomes])
            out.update({"rollout/rapr_mean": float(used.mean()),
                        "rollout/failed_calls_only_share": float(np.mean(requested & ~used)),
                        "rollout/correct_mean": float(correct.mean()),
                        "reward/uniform_group_ratio_correctness": self.uniform_share(correct, uniform_tolerance)})
        return out

    def group_records(self, step: int, advantages: np.ndarray, labels: Sequence) -> list[dict]:
        """One record per query group (groups.jsonl): what each of its samples got, and why."""
        n = self.group_size
        used = self.pixel_reasoning()
        records = []
        for g in range(len(self.rewards) // n):
            s = slice(g * n, (g + 1) * n)
            record = {"step": step, "group": g, "label": labels[g * n],
                      "terms": {key[len("reward/"):]: values[s].tolist() for key, values in self.terms.items()},
                      "reward": self.rewards[s].tolist(), "advantage": advantages[s].tolist()}
            if self.outcomes is not None:
                group = self.outcomes[s]
                record.update(correct=[o.correct for o in group], num_operations=[o.num_operations for o in group],
                              is_video=[o.is_video for o in group], pixel_reasoning=used[s].astype(int).tolist(),
                              rapr=float(used[s].mean()))
            records.append(record)
        return records


def complete_rewards(agent_rewards: np.ndarray, logs: Mapping[str, np.ndarray], group_size: int,
                     terms: Sequence[ActiveTerm]) -> StepRewards:
    """The step's rewards: the agent's plus every group term's contribution.

    `logs` holds the samples' per-sample logs by key (`SampleOutcome.LOG_KEYS`, `reward/<name>` of the sample
    terms); a group term needs the outcome logs (DataError naming the missing key otherwise).
    """
    if len(agent_rewards) % group_size:
        raise ValueError(f"{len(agent_rewards)} samples do not form complete groups of {group_size} "
                         "(n_samples_per_prompt): group reward terms need every response of a query in the same step")
    if not np.all(np.isfinite(agent_rewards)):
        raise ValueError(f"rewards contain non-finite values at {np.flatnonzero(~np.isfinite(agent_rewards)).tolist()}")
    has_outcomes = all(key in logs for key in SampleOutcome.LOG_KEYS)
    group_terms = [t for t in terms if isinstance(t.term, GroupRewardTerm)]
    outcomes = None
    if has_outcomes or group_terms:
        outcomes = [SampleOutcome.from_logs({key: logs[key][i] for key in SampleOutcome.LOG_KEYS if key in logs},
                                            where=f"sample {i} of the step")
                    for i in range(len(agent_rewards))]
    contributions = {t.log_key: np.asarray(logs[t.log_key], dtype=np.float64) for t in terms
                     if t.log_key in logs and not isinstance(t.term, GroupRewardTerm)}
    added = group_rewards(outcomes, group_size, group_terms) if group_terms else {}
    contributions.update(added)
    rewards = np.asarray(agent_rewards, dtype=np.float64) + sum(added.values(), np.zeros(len(agent_rewards)))
    return StepRewards(group_size, rewards, contributions, outcomes)

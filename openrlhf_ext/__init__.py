"""Pixel Reasoner's RL stage on OpenRLHF 0.11.2 (docs/rl.md, docs/rollout.md).

- `openrlhf_ext/agent.py`: the multi-turn visual-operation agent, given to `--train.agent_func_path`; one
  sample's tokens, loss mask and images are assembled in `openrlhf_ext.rollout_sample`.
- `openrlhf_ext.train`: the launcher `python -m openrlhf_ext.train` (upstream's CLI patched with our hooks,
  `openrlhf_ext.patch_hooks`, `patches/openrlhf/0.11.2`) and its validation.
- `openrlhf_ext.trainer`: the group reward terms (`step_rewards`) and selective sample replay in our experience
  maker and actor classes.
- `openrlhf_ext.run_config`: the run's configuration (rewards, SSR, `rollout_config`, logs, `cpu_mode`), one object
  handed to every actor, read from the recipe's `pixel_reasoner` section and the `--pr.*` flags (old names:
  `old_names`); `openrlhf_ext.rollout_context`: what each rollout request carries.
- `openrlhf_ext.data`: `python -m openrlhf_ext.data convert` builds OpenRLHF prompt datasets; `labels`: their labels.
- `openrlhf_ext.parity`, `local_rollout`: log-prob parity checks, OpenRLHF's rollout actor without Ray.
- `openrlhf_ext.cpu_mode`, `cpu_worker`, `cpu_demo`, `compat`: CPU mode (debugging and CI), the flash-attn stub.

Importing this package is cheap: submodules import OpenRLHF / torch only when used.
"""

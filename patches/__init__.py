"""Pixel Reasoner's features as patches onto upstream checkouts, for users who maintain forks.

`patches/openrlhf/<version>/*.patch` (RL) and `patches/open-r1/*.patch` (SFT) are unified diffs that add flags
and wiring to upstream code; the logic stays in the installed packages (`openrlhf_ext`, `open_r1_ext`,
`pixel_reasoner`) that the patched code imports. `python -m patches apply --target DIR` applies them safely
(see `patches.apply`); docs/patches.md describes every patch.
"""

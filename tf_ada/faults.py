"""Deterministic fault injection, for the tests that kill jobs at chosen points.

`TF_ADA_FAULT=NAME:N` in the environment kills the process with SIGKILL (no clean-up, no
`finally`) the N-th time it reaches `point(NAME)`; without the variable `point` does nothing.
Points: `shard-written` (a shard is on disk under its partial name, not yet renamed or listed),
`file-added` (a recording is queued in the shard writer), `checkpoint-saved` (a checkpoint is
written), `train-step` (a training step has run).
"""
from __future__ import annotations

import os
import signal

ENV = "TF_ADA_FAULT"
_counts: dict = {}


def point(name: str) -> None:
    """Kills this process here if `TF_ADA_FAULT` names this point and its count is reached."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    wanted, _, count = spec.partition(":")
    if wanted != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)

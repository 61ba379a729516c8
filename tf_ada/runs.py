"""Run folders (`tf-ada train --out DIR`): experiment files read safely, checkpoints recovered.

A run folder holds `experiment.json` and `checkpoints/ckpt-N.{index,data-*}` plus TensorFlow's
index file `checkpoints/checkpoint`. The checkpoint files are the truth: the index is rebuilt from
them when it is unreadable or disagrees, and a damaged newest checkpoint gives way to the newest
intact one, so a resumed run never starts over and never deletes checkpoints it does not know.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from typing import Callable, Optional

import tensorflow as tf

from tf_ada import configs, fileio
from tf_ada.configs import Experiment


def _git(*args) -> Optional[str]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def code_commit() -> Optional[str]:
    """The git commit of this checkout, with " + uncommitted changes" when tracked files differ
    from it; None outside a git checkout (an installed package)."""
    commit = _git("rev-parse", "HEAD")
    if commit and _git("status", "--porcelain", "--untracked-files=no"):
        commit += " + uncommitted changes"
    return commit

CHECKPOINT_PREFIX = "ckpt"
LOG_FILE = "train.log"  # every line the Trainer logs, time-stamped, in every run folder


class RunError(ValueError):
    """A run folder, experiment file or checkpoint that cannot be used; the message names the file
    and the problem."""


def tensorboard_events(tb_dir: str):
    """Every event of the TensorBoard files in `tb_dir` (a run folder's tensorboard/), file by file
    in name order; a file still being written yields its complete events."""
    import glob
    for path in sorted(glob.glob(os.path.join(tb_dir, "events.out.tfevents.*"))):
        try:
            yield from tf.compat.v1.train.summary_iterator(path)
        except tf.errors.DataLossError:
            continue


def read_experiment(path: str) -> Experiment:
    """Reads an experiment file (`experiment.json` or one given to `tf-ada train --experiment`).

    Raises:
      RunError: missing, unreadable, not JSON, not an experiment (wrong schema), or training
        settings that cannot work (see `check_train_config`).
    """
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise RunError(f"{path}: cannot read the experiment file ({e.strerror})") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise RunError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
                       f"the experiment file is damaged") from None
    try:
        configs.check_experiment_dict(d)
        experiment = Experiment.from_dict(d)
        configs.check_types(experiment)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        detail = f"missing field {e}" if isinstance(e, KeyError) else str(e)
        raise RunError(f"{path}: not a tf-ada experiment ({detail})") from None
    check_train_config(experiment.train, path)
    problems = configs.model_problems(experiment.model, "model.")
    if problems:
        raise RunError(f"{path}: {'; '.join(problems)}")
    return experiment


def check_train_config(cfg, where: str) -> None:
    """Raises a `RunError` naming `where` and the field if a training setting cannot work
    (`configs.train_config_problems`)."""
    problems = configs.train_config_problems(cfg)
    if problems:
        raise RunError(f"{where}: {'; '.join(problems)}")


def tee_log(log: Callable[[str], None], path: str) -> Callable[[str], None]:
    """A log function that appends each line, time-stamped, to `path` (its folder made on the first
    line) and then passes it to `log` (e.g. `print`, or nothing for `tf-ada train --quiet`)."""
    def write(line: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
        log(line)
    return write


def checkpoint_numbers(ckpt_dir: str) -> list[int]:
    """N of every checkpoint `ckpt_dir/ckpt-N` whose index file is on disk, oldest first (the Trainer
    numbers its checkpoints by step, so these are the steps they hold)."""
    if not os.path.isdir(ckpt_dir):
        return []
    return sorted(int(m.group(1)) for f in os.listdir(ckpt_dir)
                  if (m := re.fullmatch(rf"{CHECKPOINT_PREFIX}-(\d+)\.index", f)))


def checkpoint_prefixes(ckpt_dir: str) -> list[str]:
    """`ckpt_dir/ckpt-N` for every checkpoint whose index file is on disk, oldest first."""
    return [os.path.join(ckpt_dir, f"{CHECKPOINT_PREFIX}-{n}") for n in checkpoint_numbers(ckpt_dir)]


def newest_checkpoint_step(run_dir: str) -> Optional[int]:
    """The step of a run folder's newest checkpoint on disk (`run_dir/checkpoints/ckpt-N`, the one a
    resumed run starts from when intact), or None when it has none."""
    numbers = checkpoint_numbers(os.path.join(run_dir, "checkpoints"))
    return numbers[-1] if numbers else None


def reconcile_index(ckpt_dir: str, log: Callable[[str], None] = print) -> list[str]:
    """Makes `ckpt_dir/checkpoint` sound (listing only checkpoints on disk, the newest last), so that a
    `tf.train.CheckpointManager` sees (and resumes from, and only ever deletes) the run's own
    checkpoints. An unreadable or wrong index is rebuilt, and the rebuild is logged. A rebuilt
    index carries no timestamps, so the manager keeps the recovered checkpoints (it never deletes
    them) and rotates only those it writes afterwards.

    Returns:
      The checkpoint prefixes on disk, oldest first.
    """
    prefixes = checkpoint_prefixes(ckpt_dir)
    if not prefixes:
        return []
    index = os.path.join(ckpt_dir, "checkpoint")
    try:
        state = tf.train.get_checkpoint_state(ckpt_dir)
    except Exception:  # noqa: BLE001  (any parse failure means: rebuild it)
        state = None
    names = [os.path.basename(p) for p in prefixes]
    # a sound index lists only checkpoints that exist and names the newest as the latest; it need
    # not list older recovered ones (after a rebuild the manager lists only those it wrote itself,
    # and rebuilding again on every start would stop it from ever rotating its own)
    if state is not None and state.all_model_checkpoint_paths \
            and set(os.path.basename(p) for p in state.all_model_checkpoint_paths) <= set(names) \
            and os.path.basename(state.model_checkpoint_path) == names[-1]:
        return prefixes
    why = ("is missing" if not os.path.exists(index)
           else "is unreadable" if state is None else "disagrees with the files")
    lines = [f'model_checkpoint_path: "{names[-1]}"'] + [f'all_model_checkpoint_paths: "{n}"' for n in names]
    fileio.atomic_write_text(index, "\n".join(lines) + "\n")  # TensorFlow's CheckpointState text format
    log(f"train: {index} {why}; rebuilt it from the checkpoint files ({', '.join(names)})")
    return prefixes


def restore_newest_intact(checkpoint, prefixes: list[str], log: Callable[[str], None] = print,
                          partial: bool = False) -> Optional[str]:
    """Restores the newest of `prefixes` that reads back whole; logs each damaged one it passes.

    Args:
      checkpoint: what to restore into: a `tf.train.Checkpoint`, or a function of the prefix
        that returns one (for checkpoints written before an object existed).
      prefixes: checkpoint prefixes, oldest first (`reconcile_index`).
      partial: allow the checkpoint to hold objects `checkpoint` lacks (e.g. optimiser state
        when only the model is rebuilt); otherwise every existing object must match.

    Returns:
      The restored prefix, or None when `prefixes` is empty.

    Raises:
      RunError: every checkpoint is damaged (nothing is restored, nothing is deleted).
    """
    damaged = []
    for prefix in reversed(prefixes):
        try:
            target = checkpoint(prefix) if callable(checkpoint) else checkpoint
            status = target.restore(prefix)
            if partial:
                status.expect_partial()
            else:
                status.assert_existing_objects_matched()
        # how TF reports damage
        except (tf.errors.OpError, ValueError, AssertionError, IndexError, KeyError, RuntimeError) as e:
            reason = getattr(e, "message", str(e)).strip().splitlines()[0][:160]
            damaged.append(f"{os.path.basename(prefix)} ({reason})")
            continue
        if damaged:
            log(f"train: damaged checkpoint(s) {'; '.join(damaged)}; restored {prefix}, the newest intact one")
        return prefix
    if prefixes:
        raise RunError(f"{os.path.dirname(prefixes[0])}: no intact checkpoint: {'; '.join(damaged)}. "
                       f"Nothing was deleted; move the folder away to start over")
    return None

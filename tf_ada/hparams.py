"""TensorBoard's hparams table for run folders: `tensorboard --logdir runs/table1-cpu` then
compares rows (the HPARAMS tab: one line per run, its experiment's settings beside its eval/*
scalars, which the plugin finds on its own in the same run).

Each run's experiment (experiment.json: model and training config) is flattened to dotted keys
(`model.hop`, `model.encoder.residual_channels`, `train.learning_rate`; the keys of
`configs.override`) and written as the run's hparams session in run_dir/tensorboard.
"""
from __future__ import annotations

import json
import os

def flatten(d: dict, prefix: str = "") -> dict:
    """{dotted key: bool, int, float or str} of a nested dict; None and lists become strings."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (bool, int, float, str)):
            out[key] = v
        else:
            out[key] = json.dumps(v)
    return out


def experiment_hparams(experiment_dict: dict) -> dict:
    """The hparams of an experiment's dict (`Experiment.to_dict()` or experiment.json), without
    the class tags and layer names that are the same in every run."""
    flat = flatten({k: v for k, v in experiment_dict.items() if k in ("model", "train")})
    flat = {k: v for k, v in flat.items() if not k.endswith((".class", ".name"))}
    for key in ("name", "paper_row"):
        if key in experiment_dict:
            flat[key] = str(experiment_dict[key])
    return flat


def write(writer, experiment_dict: dict, trial_id: str = None) -> None:
    """Writes the experiment's hparams session with `writer` (a tf.summary writer)."""
    from tensorboard.plugins.hparams import api as hp
    with writer.as_default():
        hp.hparams(experiment_hparams(experiment_dict), trial_id=trial_id or experiment_dict.get("name"))
    writer.flush()


def has_hparams(run_dir: str) -> bool:
    """Whether run_dir/tensorboard already holds an hparams session."""
    logdir = os.path.join(run_dir, "tensorboard")
    if not os.path.isdir(logdir):
        return False
    from tensorboard.backend.event_processing import event_file_loader
    for name in os.listdir(logdir):
        if "tfevents" in name:
            for event in event_file_loader.EventFileLoader(os.path.join(logdir, name)).Load():
                if any(v.tag.startswith("_hparams_/session_start_info") for v in event.summary.value):
                    return True
    return False


def ensure(run_dir: str) -> bool:
    """Adds the hparams session to a run folder written before runs carried one (from its
    experiment.json); returns whether it wrote one."""
    path = os.path.join(run_dir, "experiment.json")
    if not os.path.exists(path) or has_hparams(run_dir):
        return False
    import tensorflow as tf
    with open(path) as f:
        experiment = json.load(f)
    writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard"), filename_suffix=".hparams")
    write(writer, experiment)
    writer.close()
    return True

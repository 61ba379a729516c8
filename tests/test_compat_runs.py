"""Run folders written by an earlier commit still load and resume (issue 14): tests/data/compat_runs
holds tiny runs trained by the commit named in its COMMIT file, with the logits and codes that
commit's `load_model` gave (made by tests/data/make_compat_runs.py). A refactor that renames a
layer, reorders variables or changes experiment.json's schema fails here."""
import dataclasses
import os
import shutil

import numpy as np
import pytest

from tf_ada import runs
from tf_ada.train import Trainer, load_model

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "compat_runs")
FOLDERS = sorted(f for f in os.listdir(ROOT) if os.path.isdir(os.path.join(ROOT, f)))


def test_the_fixture_names_its_commit_and_holds_every_model_kind():
    with open(os.path.join(ROOT, "COMMIT")) as f:
        assert len(f.read().strip()) == 40
    assert FOLDERS == ["amae_ada_1_5_tiny", "vq_ada_1_2_tiny", "wavenet_1_1_tiny"]


@pytest.mark.parametrize("name", FOLDERS)
def test_an_earlier_commit_s_run_loads_with_the_same_logits_and_codes(name):
    folder = os.path.join(ROOT, name)
    expected = np.load(os.path.join(folder, "expected.npz"))
    model, experiment = load_model(folder)
    assert experiment.paper_row in name.replace("_", ".")
    out = model(expected["x"], training=False)
    np.testing.assert_allclose(getattr(out, "logits", out), expected["logits"], rtol=0, atol=1e-5)
    if "codes" in expected:
        np.testing.assert_array_equal(out.codes, expected["codes"])


@pytest.mark.parametrize("name", FOLDERS)
def test_an_earlier_commit_s_run_resumes_training(name, audio_shards, tmp_path):
    """Every object of the old checkpoint (model, optimiser, Polyak averages, step) is restored by
    today's Trainer, which then trains on from step 2."""
    folder = str(tmp_path / name)
    shutil.copytree(os.path.join(ROOT, name), folder)
    experiment = runs.read_experiment(os.path.join(folder, "experiment.json"))
    experiment = dataclasses.replace(experiment, train=dataclasses.replace(experiment.train, steps=3, eval_every=100))
    lines = []
    trainer = Trainer(experiment, audio_shards, folder, log=lines.append)
    assert trainer.current_step == 2 and any("resumed" in line for line in lines)
    trainer.train()
    assert trainer.current_step == 3
    assert runs.checkpoint_prefixes(os.path.join(folder, "checkpoints"))[-1].endswith("ckpt-3")

"""Fault injection: `prepare` and `train` killed with SIGKILL at deterministic points
(`TF_ADA_FAULT`, see tf_ada/faults.py) and run again; two jobs on one folder; seeded training
bit-reproducible on the CPU."""
import dataclasses
import json
import os
import signal
import subprocess
import sys

import pytest

from tf_ada import configs, data, fileio
from tf_ada.train import Trainer
from conftest import tone_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPTIONS = data.PrepareOptions(eval_fraction=0.3, min_seconds=0.5)  # the CLI's defaults but these


def tf_ada(args, fault=None):
    """Runs `tf-ada ARGS` in a fresh process, killed at `fault` (NAME:N) if given."""
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_ADA_FAULT", None)
    if fault:
        env["TF_ADA_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "tf_ada.cli"] + args, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def src(tmp_path):
    return tone_folder(tmp_path / "src", 6, 150, 90)


def content(manifest):
    return {k: (v["split"], v["n_samples"], v["sha256"]) for k, v in manifest["files"].items()}


def check_complete(out, reference):
    """OUT holds exactly the reference's files, each once, and no partial shard."""
    manifest = data.load_manifest(out)
    assert content(manifest) == content(reference)
    for split in manifest["totals"]:
        stored = sum(len(s) for s in data.read_sequences(out, split))
        assert stored == manifest["totals"][split]["n_samples"]
    sources = [r["source"] for r in manifest["files"].values()]
    assert len(sources) == len(set(sources))
    assert not [f for f in os.listdir(out) if f.endswith(".partial")] and not manifest.get("writing")


@pytest.mark.parametrize("fault", ["shard-written:1", "shard-written:2", "file-added:4"])
def test_prepare_killed_and_run_again_loses_and_duplicates_nothing(src, tmp_path, fault):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.tmp").write_text("the user's")
    reference = data.prepare(str(src), str(tmp_path / "ref"), OPTIONS, log=lambda s: None)
    args = ["prepare", str(src), str(out), "--eval-fraction", "0.3", "--min-seconds", "0.5"]
    killed = tf_ada(args, fault=fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    data.prepare(str(src), str(out), OPTIONS, log=lambda s: None)  # the same command again
    check_complete(str(out), reference)
    assert (out / "notes.tmp").read_text() == "the user's"


def test_second_job_on_a_locked_folder_is_one_line_and_exit_2(src, tmp_path):
    out = tmp_path / "out"
    with fileio.FolderLock(str(out), "a test holding the folder"):
        second = tf_ada(["prepare", str(src), str(out)])
    assert second.returncode == 2
    err = second.stderr.strip().splitlines()
    assert len(err) == 1 and "another tf-ada job is using this folder (a test holding the folder" in err[0]
    assert not os.path.exists(out / "manifest.json")


def test_train_killed_between_checkpoints_resumes_from_the_last_one(audio_shards, tmp_path):
    exp = configs.table1_row("1.1", "tiny", steps=5)
    exp = dataclasses.replace(exp, train=dataclasses.replace(exp.train, checkpoint_every=2, eval_every=1000,
                                                             eval_batches=1))
    (tmp_path / "exp.json").write_text(json.dumps(exp.to_dict()))
    run = str(tmp_path / "run")
    killed = tf_ada(["train", "--data", audio_shards, "--out", run, "--experiment", str(tmp_path / "exp.json")],
                    fault="train-step:3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert sorted(f for f in os.listdir(os.path.join(run, "checkpoints")) if f.endswith(".index")) == ["ckpt-2.index"]
    logs = []
    trainer = Trainer(exp, audio_shards, run, log=logs.append)
    assert trainer.current_step == 2  # only the step after the last checkpoint is lost
    trainer.train()
    assert trainer.current_step == 5
    indexes = sorted(f for f in os.listdir(os.path.join(run, "checkpoints")) if f.endswith(".index"))
    assert indexes == ["ckpt-2.index", "ckpt-4.index", "ckpt-5.index"]


def test_seeded_training_is_bit_reproducible_on_cpu(audio_shards, tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "scripts", "reproducible.py"), audio_shards,
                           str(tmp_path), "1.2", "3"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads([line for line in proc.stdout.splitlines() if line.startswith("RESULT ")][-1][7:])
    assert result["identical"] and result["moved"] and result["n_variables"] > 0

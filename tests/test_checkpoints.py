"""Run folders survive damage: truncated checkpoints, a garbled checkpoint index and a damaged
experiment.json each give a recovery or one clear error, never a silent restart or lost files."""
import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from tf_ada import configs, runs
from tf_ada.train import Trainer, load_model


def tiny_experiment(steps=3):
    exp = configs.table1_row("1.1", "tiny", steps=steps)
    return dataclasses.replace(exp, train=dataclasses.replace(exp.train, checkpoint_every=1, eval_every=1000,
                                                              eval_batches=1))


@pytest.fixture(scope="module")
def trained(audio_shards, tmp_path_factory):
    """A run folder with checkpoints 1, 2 and 3 (copied per test)."""
    out = str(tmp_path_factory.mktemp("trained") / "run")
    Trainer(tiny_experiment(), audio_shards, out, log=lambda s: None).train()
    return out


@pytest.fixture
def run(trained, tmp_path):
    out = str(tmp_path / "run")
    shutil.copytree(trained, out)
    return out


def ckpt_files(run):
    return sorted(f for f in os.listdir(os.path.join(run, "checkpoints")) if f.startswith("ckpt-"))


def truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize("part", ["data-00000-of-00001", "index"])
def test_truncated_latest_checkpoint_falls_back_to_the_newest_intact_one(audio_shards, run, part):
    truncate(os.path.join(run, "checkpoints", f"ckpt-3.{part}"))
    logs = []
    t = Trainer(tiny_experiment(), audio_shards, run, log=logs.append)
    assert t.current_step == 2
    assert any("damaged checkpoint(s) ckpt-3" in line and "ckpt-2, the newest intact one" in line for line in logs)
    t.train(steps=3)
    assert Trainer(tiny_experiment(), audio_shards, run, log=lambda s: None).current_step == 3  # ckpt-3 rewritten whole
    model, _ = load_model(run)
    assert model is not None


def test_load_model_skips_a_damaged_latest_checkpoint(run):
    truncate(os.path.join(run, "checkpoints", "ckpt-3.data-00000-of-00001"))
    model, _ = load_model(run)
    for f in ckpt_files(run):
        if f.startswith("ckpt-3."):
            os.remove(os.path.join(run, "checkpoints", f))
    reference, _ = load_model(run)  # ckpt-2 is now the newest
    for a, b in zip(model.trainable_variables, reference.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_every_checkpoint_damaged_is_one_clear_error_and_nothing_is_deleted(audio_shards, run):
    for n in (1, 2, 3):
        truncate(os.path.join(run, "checkpoints", f"ckpt-{n}.index"))
    before = ckpt_files(run)
    with pytest.raises(runs.RunError, match="no intact checkpoint: ckpt-3 .*Nothing was deleted"):
        Trainer(tiny_experiment(), audio_shards, run, log=lambda s: None)
    assert ckpt_files(run) == before


def test_garbage_index_is_rebuilt_from_the_files_and_no_step_is_lost(audio_shards, run):
    with open(os.path.join(run, "checkpoints", "checkpoint"), "w") as f:
        f.write("\x00\x17 garbage {{{ not a checkpoint state\n")
    logs = []
    t = Trainer(tiny_experiment(), audio_shards, run, log=logs.append)
    assert t.current_step == 3  # resumed, not restarted at step 1
    assert any("is unreadable; rebuilt it from the checkpoint files (ckpt-1, ckpt-2, ckpt-3)" in line for line in logs)
    t.train(steps=4)
    assert t.current_step == 4
    # the recovered checkpoints are kept (the manager only rotates the ones it writes from now on)
    assert [f for f in ckpt_files(run) if f.endswith(".index")] == [f"ckpt-{n}.index" for n in (1, 2, 3, 4)]


def test_after_a_rebuild_later_sessions_rotate_their_own_checkpoints(audio_shards, run):
    """Review finding: the manager's own index never lists the recovered checkpoints, which must not
    make every later start rebuild the index again (nothing would ever be rotated)."""
    with open(os.path.join(run, "checkpoints", "checkpoint"), "w") as f:
        f.write("garbage\n")
    Trainer(tiny_experiment(), audio_shards, run, log=lambda s: None).train(steps=7)
    indexes = lambda: [f for f in ckpt_files(run) if f.endswith(".index")]  # noqa: E731
    assert indexes() == [f"ckpt-{n}.index" for n in (1, 2, 3, 5, 6, 7)]  # 4 rotated out, 1-3 kept
    logs = []
    t = Trainer(tiny_experiment(), audio_shards, run, log=logs.append)
    assert t.current_step == 7 and not any("rebuilt" in line for line in logs)
    t.train(steps=8)
    assert indexes() == [f"ckpt-{n}.index" for n in (1, 2, 3, 6, 7, 8)]


def test_index_missing_a_checkpoint_is_rebuilt(audio_shards, run):
    os.remove(os.path.join(run, "checkpoints", "checkpoint"))
    logs = []
    assert Trainer(tiny_experiment(), audio_shards, run, log=logs.append).current_step == 3
    assert any("checkpoint is missing; rebuilt it" in line for line in logs)


@pytest.mark.parametrize("content,message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"name": "x"}), r"not a tf-ada experiment \(missing field 'model'\)"),
    (json.dumps({"name": "x", "model": {"n_stages": 2}, "train": {}}), "not a tf-ada experiment"),
])
def test_damaged_experiment_json_is_one_clear_error(audio_shards, run, content, message):
    path = os.path.join(run, "experiment.json")
    with open(path, "w") as f:
        f.write(content)
    with pytest.raises(runs.RunError, match=message) as info:
        Trainer(tiny_experiment(), audio_shards, run, log=lambda s: None)
    assert str(info.value).startswith(path) and "\n" not in str(info.value)
    with pytest.raises(runs.RunError, match=message):
        load_model(run)


@pytest.mark.parametrize("field", ["batch_size", "n_samples", "checkpoint_every", "steps"])
def test_experiment_file_with_impossible_training_settings_is_refused(tmp_path, field):
    d = tiny_experiment().to_dict()
    d["train"][field] = 0
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(d))
    with pytest.raises(runs.RunError, match=f"train.{field} must be a positive integer, got 0"):
        runs.read_experiment(str(path))


def test_writes_leave_no_partial_files(run):
    names = os.listdir(run)
    assert "experiment.json" in names and "eval.json" in names
    assert not [n for n in names if n.endswith((".tmp", ".partial"))]
    assert np.isfinite(json.load(open(os.path.join(run, "eval.json")))["eval_nll"])


def test_checkpoint_without_the_codebook_average_loads_the_live_codebook(tmp_path):
    """Checkpoints written before the codebook joined the Polyak averages (55a4a56) still load with
    their trained codebook, not a fresh random one."""
    import tensorflow as tf
    from tf_ada.train import build_model
    exp = configs.table1_row("1.2", "tiny")
    model = build_model(exp.model)
    model.quantizer.codebook.assign(tf.fill(model.quantizer.codebook.shape, 0.5))
    old_polyak = [tf.Variable(v.value) for v in model.trainable_variables]  # the old layout
    out = tmp_path / "old"
    (out / "checkpoints").mkdir(parents=True)
    (out / "experiment.json").write_text(json.dumps(exp.to_dict()))
    tf.train.Checkpoint(model=model, polyak=old_polyak, step=tf.Variable(1, dtype=tf.int64)).write(
        str(out / "checkpoints" / "ckpt-1"))
    loaded, _ = load_model(str(out))
    np.testing.assert_array_equal(loaded.quantizer.codebook.numpy(), 0.5)
    np.testing.assert_array_equal(loaded.trainable_variables[0].numpy(), model.trainable_variables[0].numpy())

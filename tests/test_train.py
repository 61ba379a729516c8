import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tf_ada import configs
from tf_ada.configs import Experiment
from tf_ada.train import DivergenceError, Trainer, load_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "tests", "scripts")


def _env():
    return {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_trainer_resumes_and_rebuilds_from_folder(audio_shards, tmp_path):
    exp = configs.table1_row("1.4", "tiny", steps=2)
    logs = []
    t = Trainer(exp, audio_shards, str(tmp_path / "run"), log=logs.append)
    first = t.train()
    assert first["step"] == 2 and np.isfinite(first["eval_nll"]) and "eval_perplexity" in first
    ckpts = os.listdir(tmp_path / "run" / "checkpoints")
    assert any(c.startswith("ckpt-2") for c in ckpts)
    saved = json.load(open(tmp_path / "run" / "experiment.json"))
    assert Experiment.from_dict(saved) == exp
    assert os.listdir(tmp_path / "run" / "tensorboard")
    from tf_ada.train import read_eval_history
    assert [r["step"] for r in read_eval_history(str(tmp_path / "run"))] == [2]
    # the live (not averaged) weights rebuild from the folder too, the blocks' weights included
    live, _ = load_model(str(tmp_path / "run"), polyak=False)
    assert len(live.trainable_variables) == len(t.model.trainable_variables)
    for a, b in zip(t.model.trainable_variables, live.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    # a new trainer resumes from step 2 and continues to 3
    t2 = Trainer(exp, audio_shards, str(tmp_path / "run"), log=logs.append)
    assert t2.current_step == 2 and any("resumed" in line for line in logs)
    for a, b in zip(t.model.trainable_variables, t2.model.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    t2.train(steps=3)
    assert t2.current_step == 3
    # the folder alone rebuilds the model, with its Polyak weights
    model, loaded = load_model(str(tmp_path / "run"))
    assert loaded == exp
    for p, v in zip(t2.polyak, model.trainable_variables):
        np.testing.assert_allclose(p.numpy(), v.numpy())
    with pytest.raises(ValueError, match="different model"):
        Trainer(configs.table1_row("1.2", "tiny"), audio_shards, str(tmp_path / "run"))


def test_xla_training_step_matches_the_plain_graph_step(audio_shards, tmp_path):
    """The fast path (one XLA program per step, `TrainConfig.jit_compile`) against the slow one:
    same batch, same start (data-initialised VQ-VAE codebook included), three steps."""
    import dataclasses
    base = configs.table1_row("1.2", "tiny")
    out = {}
    for jit in (False, True):
        # 2 x 2048 samples = 512 queries for K = 256 codes: distinct data-init codes (with fewer
        # queries than codes, copies of one query tie exactly and the two paths round the tie
        # differently, moving different copies)
        exp = dataclasses.replace(base, train=dataclasses.replace(base.train, jit_compile=jit, steps=3,
                                                                  n_samples=2048))
        tf.keras.utils.set_random_seed(0)
        t = Trainer(exp, audio_shards, str(tmp_path / f"jit{jit}"), log=lambda *a: None)
        assert t.jit_compile is jit
        step = t._make_train_step()
        x = next(iter(t.dataset()))
        scalars = [{k: float(v) for k, v in step(x).items()} for _ in range(3)]
        out[jit] = scalars, {v.path: v.numpy() for v in t.model.trainable_variables}, t.model.quantizer.codebook.numpy()
    for a, b in zip(out[False][0], out[True][0]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["codes_in_use"] == b["codes_in_use"]
    # Adam moves every weight by about the step size whatever the gradient's size, so weights
    # whose gradients round differently may differ by up to a few steps (3 steps of 1e-3 here)
    for k, v in out[False][1].items():
        np.testing.assert_allclose(v, out[True][1][k], atol=3 * base.train.learning_rate, err_msg=k)
    np.testing.assert_allclose(out[False][2], out[True][2], atol=0.05)


def test_polyak_average_is_the_ema_of_the_weights(audio_shards, tmp_path):
    exp = configs.table1_row("1.1", "tiny", steps=3)
    t = Trainer(exp, audio_shards, str(tmp_path / "p"), log=lambda s: None)
    d = exp.train.polyak_decay
    expected = None
    for k in (1, 2, 3):
        t.train(steps=k)
        w = t.model.trainable_variables[-1].numpy()
        expected = w.astype(np.float64) if expected is None else d * expected + (1 - d) * w  # starts at step 1
    np.testing.assert_allclose(t.polyak[-1].numpy(), expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(t.polyak[-1].numpy(), t.model.trainable_variables[-1].numpy())
    # evaluation swaps the Polyak weights in and back out
    w = [x.numpy().copy() for x in t.model.trainable_variables]
    t.evaluate(max_batches=1)
    for a, x in zip(w, t.model.trainable_variables):
        np.testing.assert_array_equal(a, x.numpy())


def test_polyak_average_covers_the_vq_codebook(audio_shards, tmp_path):
    """Issue 9 decision: evaluation averages the K-means codebook with the weights."""
    exp = configs.table1_row("1.2", "tiny", steps=3)
    t = Trainer(exp, audio_shards, str(tmp_path / "vq"), log=lambda s: None)
    codebook = t.model.quantizer.codebook
    d = exp.train.polyak_decay
    expected = None
    seen = []
    for k in (1, 2, 3):
        t.train(steps=k, on_step=lambda step, scalars: seen.append(step))
        e = codebook.numpy()
        expected = e.astype(np.float64) if expected is None else d * expected + (1 - d) * e  # from step 1
    assert seen == [1, 2, 3]
    live = codebook.numpy().copy()
    with t.polyak_weights() as model:
        np.testing.assert_allclose(model.quantizer.codebook.numpy(), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(codebook.numpy(), live)
    model, _ = load_model(str(tmp_path / "vq"))
    np.testing.assert_allclose(model.quantizer.codebook.numpy(), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("query_norm", ["standardize", "whiten", "whiten_shrink"])
def test_polyak_weights_get_their_own_query_statistics(audio_shards, tmp_path, query_norm):
    """Issue 9: the Polyak-averaged encoder is evaluated with the query statistics of its own
    queries on the Trainer's fixed calibration batches (not the live encoder's running ones), in
    the Trainer's evaluation and in the model rebuilt from the folder; the live model keeps its
    running statistics."""
    import dataclasses
    from tf_ada.train import CALIBRATION_BATCHES
    exp = configs.table1_row("1.2", "tiny", steps=4)
    exp = dataclasses.replace(exp, model=dataclasses.replace(exp.model, query_norm=query_norm))
    t = Trainer(exp, audio_shards, str(tmp_path / "vq"), log=lambda s: None)
    t.train(steps=4, evaluate=False)
    q = t.model.quantizer
    live = [v.numpy().copy() for v in q.statistics]
    assert len(t._calibration_batches) == CALIBRATION_BATCHES
    with t.polyak_weights() as model:
        flat = np.concatenate([model.encoder(x).numpy().reshape(-1, q.code_channels)
                               for x in t._calibration_batches]).astype(np.float64)
        mean = flat.mean(0)
        second = np.cov(flat.T, bias=True) if query_norm != "standardize" else flat.var(0)
        if query_norm == "whiten_shrink":  # shrunk with the alpha of one training batch's queries
            alpha = q.code_channels / (len(flat) / CALIBRATION_BATCHES + q.code_channels)
            second = (1 - alpha) * second + alpha * np.diag(np.diag(second))
        np.testing.assert_allclose(q.query_mean.numpy(), mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(q.statistics[1].numpy(), second, rtol=1e-3, atol=1e-5)
        assert not np.allclose(q.statistics[1].numpy(), live[1], rtol=1e-3)  # not the running ones
    for v, before in zip(q.statistics, live):
        np.testing.assert_array_equal(v.numpy(), before)
    model, _ = load_model(str(tmp_path / "vq"))
    np.testing.assert_allclose(model.quantizer.query_mean.numpy(), mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.quantizer.statistics[1].numpy(), second, rtol=1e-3, atol=1e-5)
    live_model, _ = load_model(str(tmp_path / "vq"), polyak=False)
    for v, before in zip(live_model.quantizer.statistics, live):
        np.testing.assert_allclose(v.numpy(), before, rtol=1e-6)
    # Polyak weights entered without a save or an evaluation (e.g. after resuming a checkpoint
    # written before the statistics had a slot, which leaves them at their initial values) are
    # calibrated on entry
    for slot in t.polyak_statistics:
        slot.assign(tf.zeros_like(slot))
    t._calibrated_step = None
    with t.polyak_weights():
        np.testing.assert_allclose(q.query_mean.numpy(), mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(q.statistics[1].numpy(), second, rtol=1e-3, atol=1e-5)


def test_divergence_guard_keeps_last_good_checkpoint(audio_shards, tmp_path):
    exp = configs.table1_row("1.1", "tiny", steps=1)
    t = Trainer(exp, audio_shards, str(tmp_path / "d"), log=lambda s: None)
    t.train()
    good = t.manager.latest_checkpoint
    for v in t.model.trainable_variables:
        v.assign(tf.fill(v.shape, np.nan))
    with pytest.raises(DivergenceError, match="non-finite loss at step 2.*intact"):
        t.train(steps=3)
    assert t.manager.latest_checkpoint == good
    t3 = Trainer(exp, audio_shards, str(tmp_path / "d"), log=lambda s: None)
    assert t3.current_step == 1
    assert all(np.isfinite(v.numpy()).all() for v in t3.model.trainable_variables)


def test_wavenet_prior_trains_on_code_sequences(tmp_path):
    from tf_ada.data import ShardWriter
    w = ShardWriter(str(tmp_path / "codes"), kind="codes", dtype="int16", n_classes=16, sample_rate=2000)
    rng = np.random.default_rng(0)
    for i in range(3):
        w.add(f"s{i}", "eval" if i == 2 else "train", np.repeat(rng.integers(0, 16, 300), 4), {})
    w.close()
    model = configs.WaveNetConfig(n_stages=3, n_repeats=1, filter_length=2, residual_channels=8, inner_channels=4,
                                  skip_channels=8, n_input_classes=16, output_channels=16, name="prior")
    train = configs.TrainConfig(batch_size=4, n_samples=64, learning_rate=3e-3, steps=150, log_every=50,
                                polyak_decay=0.8, eval_every=150, checkpoint_every=150)
    t = Trainer(Experiment("prior", model, train), str(tmp_path / "codes"), str(tmp_path / "run"), log=lambda s: None)
    result = t.train()
    # each code repeats 4 times (entropy rate log(16) / 4 = 0.69): a trained prior predicts the
    # repeats and falls well below the unigram log(16) = 2.77
    assert result["train_nll"] < 2.0 and result["eval_nll"] < 2.2


def test_mirrored_strategy_two_replicas_share_the_codebook(audio_shards, tmp_path):
    out = subprocess.run([sys.executable, os.path.join(SCRIPTS, "strategy_step.py"), audio_shards, str(tmp_path / "m")],
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["step"] == 1
    a, b = (np.array(c) for c in result["codebook"])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(*(np.array(c) for c in result["ema_counts"]))
    assert not np.allclose(np.array(result["ema_counts"][0]), 1.0)  # the EMA moved
    # the whitening's running covariance and the Polyak weights' calibrated statistics (set by the
    # save at step 1, outside the replicas) are the same on both replicas and no longer the initial ones
    np.testing.assert_array_equal(*(np.array(c) for c in result["query_cov"]))
    assert not np.allclose(np.array(result["query_cov"][0]), np.eye(len(result["query_cov"][0])))
    # the first step sets the running covariance to the batch's, shrunk with the alpha of the global
    # batch's query count (both replicas' queries), not of one replica's half
    assert result["query_norm"] == "whiten_shrink"
    q0 = np.array(result["first_queries"], dtype=np.float64)
    n, d = q0.shape
    cov = np.cov(q0.T, bias=True)

    def shrunk(alpha):
        return (1 - alpha) * cov + alpha * np.diag(np.diag(cov))
    running = np.array(result["query_cov"][0])
    np.testing.assert_allclose(running, shrunk(d / (n + d)), rtol=1e-3, atol=1e-6)
    assert not np.allclose(running, shrunk(d / (n / 2 + d)), rtol=1e-3, atol=1e-6)
    for stat in result["polyak_statistics"]:
        np.testing.assert_array_equal(*(np.array(c) for c in stat))
    assert not np.allclose(np.array(result["polyak_statistics"][1][0]), np.eye(len(result["query_cov"][0])))
    assert result["checkpoint"]


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_multiworker_two_workers_on_localhost(audio_shards, tmp_path):
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = {**_env(), "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen([sys.executable, os.path.join(SCRIPTS, "multiworker.py"), audio_shards,
                                       str(tmp_path / "mw")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=400)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads([line for line in out.splitlines() if line.startswith("RESULT ")][-1][7:]))
    assert [r["replicas"] for r in results] == [2, 2] and [r["step"] for r in results] == [2, 2]
    assert [r["chief"] for r in results] == [True, False]
    assert results[0]["codebook_sum"] == results[1]["codebook_sum"]  # synchronised K-means state
    assert any(f.startswith("ckpt-2") for f in os.listdir(tmp_path / "mw" / "checkpoints"))
    assert not [f for f in os.listdir(tmp_path / "mw") if f.startswith("worker_tmp_")]  # non-chief copies removed

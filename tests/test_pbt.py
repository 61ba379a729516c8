"""Population based training (tf_ada.pbt): selection and explore on a toy objective, the perturbed
hyperparameters inside a compiled step, checkpoint copies, divergence, keras-tuner's distributed mode."""
import dataclasses
import hashlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tf_ada import configs, pbt, runs
from tf_ada.train import DivergenceError, Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# --- the pure parts ---------------------------------------------------------------------------------

def test_truncation_selection_bottom_copies_top_and_diverged_always_replaced():
    rng = np.random.default_rng(0)
    fitness = [-3.0, -1.0, -2.0, None, -4.0, -1.5, -2.5, -3.5, -0.5, float("nan")]
    copies = pbt.truncation_selection(fitness, 0.2, rng)
    # k = 2: top = members 8 (-0.5) and 1 (-1.0); bottom = the two ranked last (the diverged 3 and 9),
    # and nothing else since both diverged members are already in it
    assert set(copies) == {3, 9} and set(copies.values()) <= {8, 1}
    copies = pbt.truncation_selection([-3.0, -1.0, -2.0, -4.0, -1.5], 0.2, rng)
    assert copies.keys() == {3} and copies[3] == 1
    assert pbt.truncation_selection([-3.0, -1.0, None], 0.2, rng, diverged_only=True).keys() == {2}
    assert pbt.truncation_selection([-3.0, -1.0], 0.2, rng, diverged_only=True) == {}
    with pytest.raises(pbt.PBTError, match="every member"):
        pbt.truncation_selection([None, float("inf")], 0.2, rng)


def test_perturb_multiplies_beta_and_the_ema_rate_by_the_factors():
    cfg = pbt.PBTConfig(population=4)
    rng = np.random.default_rng(1)
    for _ in range(50):
        out = pbt.perturb(rng, {"beta": 0.5, "gamma": 0.99}, cfg)
        assert out["beta"] / 0.5 == pytest.approx(0.8) or out["beta"] / 0.5 == pytest.approx(1.2)
        assert (1 - out["gamma"]) / 0.01 == pytest.approx(0.8) or (1 - out["gamma"]) / 0.01 == pytest.approx(1.2)
    one = dataclasses.replace(cfg, perturb_probability=0.0)  # still one value perturbed
    changed = [sum(a != b for a, b in zip(pbt.perturb(rng, {"beta": 0.5, "gamma": 0.99}, one).values(), (0.5, 0.99)))
               for _ in range(20)]
    assert set(changed) == {1}
    draws = [pbt.sample_hyperparameters(rng, cfg) for _ in range(2000)]
    betas = np.log([d["beta"] for d in draws])
    rates = np.log([1 - d["gamma"] for d in draws])
    assert betas.min() >= math.log(0.1) and betas.max() <= math.log(2.0)
    assert rates.min() >= math.log(1e-3) - 1e-9 and rates.max() <= math.log(0.2) + 1e-9
    # log-uniform: the mean of the logs is the middle of the log range
    assert abs(betas.mean() - 0.5 * (math.log(0.1) + math.log(2.0))) < 0.05
    assert abs(rates.mean() - 0.5 * (math.log(1e-3) + math.log(0.2))) < 0.07


# --- the oracle on a toy objective --------------------------------------------------------------------

BETA_STAR, RATE_STAR = 0.3, 0.01  # the toy's optimum: beta = 0.3, gamma = 0.99


class ToyRunner:
    """A member's "checkpoint" is its accumulated quality q (ckpt-N.index, JSON; ckpt-N.data-*, bytes);
    each step adds -(squared log distance of beta and 1 - gamma to the optimum). Fitness = q / step:
    a lineage that spent its steps near the optimum is fitter."""

    def __init__(self, diverge=(), interrupt=None):
        self.diverge = set(diverge)  # (member, stop step) pairs that raise DivergenceError
        self.interrupt = interrupt  # a (member, stop step) whose training is interrupted (the process stops)

    @staticmethod
    def distance(hp):
        return (math.log(hp["beta"] / BETA_STAR)) ** 2 + (math.log((1 - hp["gamma"]) / RATE_STAR)) ** 2

    def train(self, folder, member, hp, stop):
        if (member, stop) in self.diverge:
            raise DivergenceError("toy: injected")
        if (member, stop) == self.interrupt:
            raise KeyboardInterrupt  # not an Exception: keras-tuner does not catch it, the search stops
        ckpts = os.path.join(folder, "checkpoints")
        prefixes = runs.checkpoint_prefixes(ckpts)
        step, q = 0, 0.0
        if prefixes:
            with open(prefixes[-1] + ".index") as f:
                state = json.load(f)
            step, q = state["step"], state["q"]
        q -= (stop - step) * self.distance(hp)
        os.makedirs(ckpts, exist_ok=True)
        with open(os.path.join(ckpts, f"ckpt-{stop}.index"), "w") as f:
            json.dump({"step": stop, "q": q}, f)
        with open(os.path.join(ckpts, f"ckpt-{stop}.data-00000-of-00001"), "wb") as f:
            f.write(np.float64(q).tobytes() + os.urandom(16))
        return {"nll": -q / stop, "nll_se": 0.0}


def _toy_population(tmp_path, config, runner, initial=None):
    exp = configs.table1_row("1.2", "tiny")
    return pbt.run_population(exp, "unused", str(tmp_path / "pop"), config, runner=runner, initial=initial,
                              log=lambda line: None)


def test_toy_objective_members_move_to_better_hyperparameters(tmp_path):
    config = pbt.PBTConfig(population=8, ready_steps=10, warmup_steps=30, total_steps=150, max_nll=1e9, seed=3)
    lineage = _toy_population(tmp_path, config, ToyRunner())
    assert lineage["stopped"] == "finished"
    starts = [e for e in lineage["events"] if e["kind"] == "start"]
    ends = lineage["members"]
    dist0 = np.mean([ToyRunner.distance(e) for e in starts])
    dist1 = np.mean([ToyRunner.distance(m) for m in ends])
    assert dist1 < 0.25 * dist0, (dist0, dist1)
    best = pbt.best_member(str(tmp_path / "pop"))
    assert ToyRunner.distance(best) < min(ToyRunner.distance(e) for e in starts)
    # every member reached the last step; each interval was recorded once
    intervals = [(e["member"], e["step"]) for e in lineage["events"] if e["kind"] == "interval"]
    assert len(intervals) == len(set(intervals)) == 8 * 15
    assert all(m["step"] == 150 for m in ends)
    # no perturbation before the warm-up: every member keeps its initial values up to step 30
    initial = {e["member"]: (e["beta"], e["gamma"]) for e in starts}
    for e in lineage["events"]:
        if e["kind"] == "interval" and e["step"] <= 30:
            assert (e["beta"], e["gamma"]) == initial[e["member"]]
    exploits = [e for e in lineage["events"] if e["kind"] == "exploit"]
    assert exploits and min(e["step"] for e in exploits) == 30
    # truncation selection: 2 of 8 (bottom 20%) copy one of the top 2 at every interval end from 30 to 140
    by_step = {}
    for e in exploits:
        by_step.setdefault(e["step"], []).append(e)
        assert e["perturbed"] and e["reason"] == "truncation"
        assert e["beta"] / e["copied"]["beta"] in (pytest.approx(0.8), pytest.approx(1.2))
    assert sorted(by_step) == list(range(30, 150, 10)) and {len(v) for v in by_step.values()} == {2}
    # the copied member's checkpoint: the toy's q continues from the source's
    pop = str(tmp_path / "pop")
    record = pbt.read_member_record(pbt.member_dir(pop, exploits[-1]["member"]))
    assert record["copies"][-1]["source"] == exploits[-1]["source"]
    pbt.plot_lineage(pop)
    assert os.path.getsize(os.path.join(pop, "lineage.png")) > 10_000


def test_toy_diverged_member_is_replaced_before_the_warmup_without_perturbation(tmp_path):
    config = pbt.PBTConfig(population=4, ready_steps=10, warmup_steps=40, total_steps=50, max_nll=1e9, seed=0)
    lineage = _toy_population(tmp_path, config, ToyRunner(diverge={(2, 10)}))
    (ev,) = [e for e in lineage["events"] if e["kind"] == "interval" and e["diverged"]]
    assert (ev["member"], ev["step"]) == (2, 10)
    (ex,) = [e for e in lineage["events"] if e["kind"] == "exploit" and e["step"] < 40]
    assert ex["member"] == 2 and ex["reason"] == "diverged" and not ex["perturbed"]
    assert (ex["beta"], ex["gamma"]) == (ex["copied"]["beta"], ex["copied"]["gamma"])
    m2 = lineage["members"][2]
    assert m2["step"] == 50 and not m2["diverged"] and np.isfinite(m2["fitness"])


# --- beta and gamma inside the compiled training step ---------------------------------------------------

def test_perturbed_beta_and_gamma_change_the_next_compiled_step(audio_shards, tmp_path):
    """The XLA step compiled with beta 0.25, gamma 0.99; then beta 1.7, gamma 0.8: the next step's
    loss is nll + 1.7 x commitment and its K-means EMA moves with decay 0.8, computed by hand."""
    base = configs.table1_row("1.2", "tiny")
    # standardised queries (not the rows' whitened ones), which the test reproduces by hand below
    base = dataclasses.replace(base, model=dataclasses.replace(base.model, query_norm="standardize"))
    # 8 x 1024 samples = 1,024 queries a batch: the data init gives 256 distinct codes (no ties)
    exp = dataclasses.replace(base, train=dataclasses.replace(base.train, jit_compile=True, steps=4, batch_size=8,
                                                              n_samples=1024))
    t = Trainer(exp, audio_shards, str(tmp_path / "run"), log=lambda s: None)
    assert t.jit_compile
    step_fn = t._make_train_step()
    it = iter(t.dataset())
    step_fn(next(it))  # compiled; the data init sets the codebook
    vq = t.model.quantizer
    vq.set_hyperparameters(beta=1.7, gamma=0.8)
    x = next(it)
    # by hand, from the state before the step: standardised queries, nearest codes, counts, sums
    q = t.model.encoder(tf.cast(x, tf.int32)).numpy().reshape(-1, vq.code_channels).astype(np.float64)
    qn = (q - q.mean(0)) / np.sqrt(q.var(0) + 1e-5)
    codebook, n0, m0 = (v.numpy().astype(np.float64) for v in (vq.codebook, vq.ema_counts, vq.ema_sums))
    d = ((qn[:, None, :] - codebook[None]) ** 2).sum(-1)
    codes = d.argmin(1)
    commitment = np.mean((qn - codebook[codes]) ** 2)
    counts = np.bincount(codes, minlength=vq.n_codes).astype(np.float64)
    sums = np.zeros_like(m0)
    np.add.at(sums, codes, qn)
    scalars = {k: float(v) for k, v in step_fn(x).items()}
    assert scalars["commitment"] == pytest.approx(commitment, rel=1e-4)
    assert scalars["loss"] == pytest.approx(scalars["nll"] + 1.7 * commitment, rel=1e-5)
    assert abs(scalars["loss"] - (scalars["nll"] + 0.25 * commitment)) > 1e-3  # the old beta would differ
    np.testing.assert_allclose(vq.ema_counts.numpy(), 0.8 * n0 + 0.2 * counts, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vq.ema_sums.numpy(), 0.8 * m0 + 0.2 * sums, rtol=1e-4, atol=1e-5)
    # the hyperparameters are no weights: not trained, not averaged, not checkpointed
    assert not any(v is vq.beta or v is vq.gamma for v in t.model.variables)
    t.save()
    stored = tf.train.load_checkpoint(t.manager.latest_checkpoint).get_variable_to_shape_map()
    assert not any("beta" in k or "gamma" in k for k in stored)


def test_trainer_reload_takes_new_hyperparameters_and_checkpoint_in_place(audio_shards, tmp_path):
    exp = configs.table1_row("1.2", "tiny", steps=2)
    a = Trainer(exp, audio_shards, str(tmp_path / "a"), log=lambda s: None)
    a.train(evaluate=False)
    assert not os.path.exists(tmp_path / "a" / "eval.json")  # evaluate=False: no evaluation
    b = Trainer(exp, audio_shards, str(tmp_path / "b"), log=lambda s: None)
    pbt.copy_checkpoint(str(tmp_path / "a"), 2, str(tmp_path / "b"))
    new = dataclasses.replace(exp, model=dataclasses.replace(exp.model, beta=0.6, gamma=0.95))
    assert b.reload(new).endswith("ckpt-2") and b.current_step == 2
    assert float(b.model.quantizer.beta.numpy()) == pytest.approx(0.6)
    assert float(b.model.quantizer.gamma.numpy()) == pytest.approx(0.95)
    for va, vb in zip(a.model.variables, b.model.variables):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    assert runs.read_experiment(str(tmp_path / "b" / "experiment.json")).model.beta == 0.6
    with pytest.raises(runs.RunError, match="only beta and gamma"):
        b.reload(dataclasses.replace(exp, model=dataclasses.replace(exp.model, hop=4)))


# --- a population of Trainers: copies, a NaN member -----------------------------------------------------

class NaNRunner(pbt.TrainerRunner):
    """Puts NaN into member 1's first weight before its first interval: its first loss is NaN."""

    injected = False

    def _trainer(self, folder, member, experiment):
        trainer = super()._trainer(folder, member, experiment)
        if member == 1 and not self.injected:
            v = trainer.model.trainable_variables[0]
            v.assign(tf.fill(v.shape, float("nan")))
            self.injected = True
        return trainer


def test_population_replaces_a_nan_member_with_a_byte_identical_copy(audio_shards, tmp_path, monkeypatch):
    exp = configs.table1_row("1.2", "tiny")
    config = pbt.PBTConfig(population=2, ready_steps=1, warmup_steps=1, total_steps=2, fitness_windows=2, seed=0)
    pop = str(tmp_path / "pop")
    copies = []

    def copy_and_compare(src_dir, step, dst_dir):  # the bytes of source and copy, at copy time
        hashes = copy_checkpoint(src_dir, step, dst_dir)
        for name in hashes:
            with open(os.path.join(src_dir, "checkpoints", name), "rb") as a, \
                    open(os.path.join(dst_dir, "checkpoints", name), "rb") as b:
                copies.append((name, a.read() == b.read(), _sha256(a.name) == hashes[name]))
        return hashes

    copy_checkpoint = pbt.copy_checkpoint
    monkeypatch.setattr(pbt, "copy_checkpoint", copy_and_compare)
    runner = NaNRunner(exp, audio_shards, config, 2, log=lambda s: None)
    lineage = pbt.run_population(exp, audio_shards, pop, config, runner=runner, log=lambda s: None)
    events = lineage["events"]
    (bad,) = [e for e in events if e["kind"] == "interval" and e["diverged"]]
    assert (bad["member"], bad["step"]) == (1, 1)
    (ex,) = [e for e in events if e["kind"] == "exploit"]
    assert (ex["member"], ex["source"], ex["step"], ex["reason"]) == (1, 0, 1, "diverged")
    assert ex["perturbed"] and ex["beta"] / ex["copied"]["beta"] in (pytest.approx(0.8), pytest.approx(1.2))
    assert all(m["step"] == 2 and not m["diverged"] and np.isfinite(m["fitness"]) for m in lineage["members"])
    # the whole checkpoint (one .index, one data shard) copied byte for byte
    assert sorted(name for name, _, _ in copies) == ["ckpt-1.data-00000-of-00001", "ckpt-1.index"]
    assert all(same and hashed for _, same, hashed in copies)
    record = pbt.read_member_record(pbt.member_dir(pop, 1))
    assert [(c["source"], c["step"]) for c in record["copies"]] == [(0, 1)]
    assert os.path.exists(os.path.join(pop, "lineage.png"))
    for m in (0, 1):  # each member folder is a Trainer run folder at the last step
        assert runs.checkpoint_prefixes(os.path.join(pbt.member_dir(pop, m), "checkpoints"))[-1].endswith("ckpt-2")


def test_toy_population_resumes_after_the_process_stopped_mid_interval(tmp_path):
    config = pbt.PBTConfig(population=3, ready_steps=10, warmup_steps=10, total_steps=40, max_nll=1e9, seed=5)
    with pytest.raises(KeyboardInterrupt):
        _toy_population(tmp_path, config, ToyRunner(interrupt=(1, 30)))
    stopped = pbt.read_lineage(str(tmp_path / "pop"))
    assert stopped["stopped"] is None and stopped["members"][1]["step"] == 20
    lineage = _toy_population(tmp_path, config, ToyRunner())
    assert lineage["stopped"] == "finished"
    intervals = [(e["member"], e["step"]) for e in lineage["events"] if e["kind"] == "interval"]
    assert sorted(intervals) == [(m, s) for m in range(3) for s in (10, 20, 30, 40)]  # each once
    # the decisions made before the stop were kept: one set of exploits per interval end
    assert sorted({e["step"] for e in lineage["events"] if e["kind"] == "exploit"}) == [10, 20, 30]


def test_population_refuses_other_settings_in_its_folder(tmp_path):
    config = pbt.PBTConfig(population=2, ready_steps=5, warmup_steps=5, total_steps=10, max_nll=1e9)
    _toy_population(tmp_path, config, ToyRunner())
    with pytest.raises(pbt.PBTError, match="other settings"):
        _toy_population(tmp_path, dataclasses.replace(config, population=3), ToyRunner())
    again = _toy_population(tmp_path, config, ToyRunner())  # finished: resumes to the end at once
    assert again["stopped"] == "finished"


# --- keras-tuner's distributed mode: a chief and two workers on localhost ---------------------------------

def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(tuner_id, port, data, pop, steps, logs, fault=None):
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3", "KERASTUNER_TUNER_ID": tuner_id,
           "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port), "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_ADA_FAULT", None)
    if fault:
        env["TF_ADA_FAULT"] = fault
    log = open(logs / f"{tuner_id}.log", "a")
    cmd = [sys.executable, "-m", "tf_ada.pbt", "run", data, pop, "--row", "1.2", "--scale", "tiny",
           "--steps", str(steps), "--population", "2", "--ready-steps", "1", "--warmup-steps", "2",
           "--fitness-windows", "2", "--idle-seconds", "0.2", "--quiet"]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def _wait(procs, logs, timeout=400):
    for name, p in procs.items():
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs.values():
                q.kill()
            raise AssertionError(f"{name} did not finish:\n" + (logs / f"{name}.log").read_text()[-3000:])
        assert rc == 0, f"{name} exited with {rc}:\n" + (logs / f"{name}.log").read_text()[-3000:]


def _check_complete(pop, steps):
    lineage = pbt.read_lineage(pop)
    assert lineage["stopped"] == "finished"
    intervals = [(e["member"], e["step"]) for e in lineage["events"] if e["kind"] == "interval"]
    assert sorted(intervals) == [(m, s) for m in (0, 1) for s in range(1, steps + 1)]  # each once
    assert all(m["step"] == steps and np.isfinite(m["fitness"]) for m in lineage["members"])
    return lineage


@pytest.mark.slow
def test_two_keras_tuner_workers_and_a_chief_complete_a_population(audio_shards, tmp_path):
    port, pop, logs = _free_port(), str(tmp_path / "pop"), tmp_path
    procs = {"chief": _launch("chief", port, audio_shards, pop, 3, logs)}
    procs.update({w: _launch(w, port, audio_shards, pop, 3, logs) for w in ("tuner0", "tuner1")})
    _wait(procs, logs)
    lineage = _check_complete(pop, 3)
    tuners = {e["tuner"] for e in lineage["events"] if e["kind"] == "interval"}
    assert tuners == {"tuner0", "tuner1"}  # both workers trained members
    assert [e["step"] for e in lineage["events"] if e["kind"] == "exploit"] == [2]
    assert os.path.exists(os.path.join(pop, "lineage.png"))


@pytest.mark.slow
def test_killed_chief_and_worker_resume_the_population(audio_shards, tmp_path):
    """The chief kills itself (SIGKILL) after recording the second interval, before answering the
    worker; restarted, it reloads, and the worker's repeated call is taken once. Then a worker is
    killed mid-run and restarted under its id: it gets its interval back."""
    steps, port, pop, logs = 6, _free_port(), str(tmp_path / "pop"), tmp_path
    procs = {"chief": _launch("chief", port, audio_shards, pop, steps, logs, fault="pbt-trial-ended:2")}
    procs.update({w: _launch(w, port, audio_shards, pop, steps, logs) for w in ("tuner0", "tuner1")})

    def intervals():
        try:
            return sum(e["kind"] == "interval" for e in pbt.read_lineage(pop)["events"])
        except (OSError, ValueError):
            return 0

    def wait_for(n, timeout=300):
        t0 = time.monotonic()
        while intervals() < n:
            assert time.monotonic() - t0 < timeout, "no progress:\n" + (logs / "chief.log").read_text()[-2000:]
            assert all(p.poll() is None for p in procs.values()), "a process ended early"
            time.sleep(0.2)

    assert procs["chief"].wait(timeout=300) == -signal.SIGKILL
    assert intervals() == 2
    procs["chief"] = _launch("chief", port, audio_shards, pop, steps, logs)
    wait_for(6)
    procs["tuner0"].send_signal(signal.SIGKILL)
    procs["tuner0"].wait()
    procs["tuner0"] = _launch("tuner0", port, audio_shards, pop, steps, logs)
    _wait(procs, logs)
    _check_complete(pop, steps)  # every interval recorded exactly once
    assert "Reloading Tuner" in (logs / "chief.log").read_text()
    workers = (logs / "tuner0.log").read_text() + (logs / "tuner1.log").read_text()
    assert "the chief oracle is unavailable (end_trial); retrying" in workers

"""The two evaluation protocols (Table 1 caption; full context) and the verdict statistics."""
import math

import numpy as np
import pytest
import tensorflow as tf

from tf_ada import configs, data, evaluation as ev, ops
from tf_ada.train import build_model


def _shards(path, lengths, works=None, split="eval", chunk_samples=3000, seed=0):
    """Audio shards holding recordings of the given lengths (records shorter than a window, so
    windows are reassembled across records)."""
    rng = np.random.default_rng(seed)
    w = data.ShardWriter(str(path), kind="audio", dtype="uint8", n_classes=256, sample_rate=16000,
                         chunk_samples=chunk_samples)
    for i, n in enumerate(lengths):
        t = np.arange(n) / 16000
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 800) * t) + 0.05 * rng.standard_normal(n)
        info = {"piece": works[i]} if works else {}
        w.add(f"r{i}.wav", split, ops.mu_law_encode(x.astype(np.float32)).numpy(), info)
    w.close()
    return str(path)


def _fixed_logits(model, logits):
    """Sets the output head so that every timestep's logits are `logits` (W_2 = 0, b_2 = logits)."""
    head = model.local.stack if hasattr(model, "local") else model.stack
    head.head_kernel_2.assign(tf.zeros_like(head.head_kernel_2))
    head.head_bias_2.assign(tf.constant(logits, tf.float32))


@pytest.mark.parametrize("kind", ["wavenet", "ada"])
def test_known_nll_under_both_protocols(tmp_path, kind):
    d = _shards(tmp_path / "d", [9000, 5000], works=["a", "b"])
    exp = configs.table1_row("1.1" if kind == "wavenet" else "1.2", "tiny")
    model = build_model(exp.model)
    rng = np.random.default_rng(1)
    logits = rng.normal(size=256) if kind == "wavenet" else np.zeros(256)
    _fixed_logits(model, logits)
    logp = logits - np.log(np.exp(logits).sum())
    recs = ev.read_recordings(d, ["r0.wav", "r1.wav"])
    expected = -np.mean(np.concatenate([logp[r.astype(int)] for r in recs.values()]))
    if kind == "ada":
        assert abs(expected - math.log(256)) < 1e-12
    results = ev.evaluate_model(model, d, max_sequences=None, batch_size=3)
    for protocol in ev.PROTOCOLS:
        r = results[("eval", protocol)]
        assert r.count.sum() == 14000  # every real sample once, windows of 16000 padded and masked
        s = ev.summarize(r, protocol)
        np.testing.assert_allclose(s["nll"], expected, rtol=1e-5)
        assert s["works"] == 2 and s["sequences"] == 2
        assert ("perplexity" in s) == (kind == "ada")


def test_full_context_equals_one_pass_over_the_recording(tmp_path):
    # a recording that is not a multiple of the window or of the hop, stored in records of 3000
    n = 10100
    d = _shards(tmp_path / "d", [n])
    exp = configs.table1_row("1.2", "tiny")
    model = build_model(exp.model)
    ctx = ev.context_of(exp.model)
    assert ctx.right > 0 and ctx.left >= exp.model.local.receptive_field and ctx.left % 8 == 0
    wins = ev.prepare_windows(d, "eval", "full", ctx, seconds=0.25)  # windows of 4000 targets
    assert wins.length == 4000 and [w.start for w in wins.windows] == [0, 4000, 8000]
    res = ev.evaluate_windows(model, wins, batch_size=2)
    # the slow twin: one forward pass over the whole recording padded with silence at its edges
    rec = ev.read_recordings(d, ["r0.wav"])["r0.wav"].astype(np.int32)
    pad = ops.mu_law_silence(256)
    total = ctx.left + n + ctx.right
    total += -total % 8
    x = np.full(total, pad, np.int32)
    x[ctx.left:ctx.left + n] = rec
    out = model(x[None], training=False)
    nll = out.nll_per_step.numpy()[0, ctx.left:ctx.left + n].astype(np.float64)
    codes = out.codes.numpy()[0, ctx.left // 8:ctx.left // 8 + -(-n // 8)]
    np.testing.assert_allclose(res.nll_sum, [nll[s:s + 4000].sum() for s in (0, 4000, 8000)], rtol=1e-4)
    np.testing.assert_array_equal(res.count, [4000, 4000, 2100])
    np.testing.assert_array_equal(res.code_counts.sum(0), np.bincount(codes, minlength=256))
    assert res.code_counts.sum() == -(-n // 8)  # the last, partly real frame counts; padded frames do not
    # the paper protocol evaluates each window cold: same targets, different (worse or equal) context
    cold = ev.evaluate_windows(model, ev.prepare_windows(d, "eval", "paper", ctx, seconds=0.25), batch_size=2)
    np.testing.assert_array_equal(cold.count, res.count)
    assert np.abs(cold.nll_sum - res.nll_sum).max() > 1e-3


def test_per_sequence_perplexity_underestimates_at_hop_64():
    """Table 1 caption: 1-s sequences at hop 64 hold 250 codes, so a within-sequence perplexity
    cannot reach 256 even when the pooled usage is uniform; at hop 8 (2000 codes) it nearly does."""
    rng = np.random.default_rng(0)
    out = {}
    for hop in (8, 64):
        per_seq = 16000 // hop
        codes = rng.integers(0, 256, size=(100, per_seq))
        counts = np.stack([np.bincount(c, minlength=256) for c in codes])
        works = np.arange(100) % 10
        out[hop] = (ev.per_sequence_perplexity_estimate(counts, works).value,
                    ev.pooled_perplexity_estimate(counts, works).value)
    assert out[64][0] <= 250 and out[64][0] < 0.7 * out[64][1] and out[64][1] > 250
    assert out[8][0] > 0.9 * out[8][1]


def test_the_paper_protocol_averages_perplexity_per_sequence_and_full_context_pools_it():
    """Table 1 caption: under the 1-s protocol the perplexity is computed within each sequence and
    averaged; full context pools the usage. Two sequences each using one (different) code: 1 vs 2."""
    counts = np.array([[4, 0, 0], [0, 4, 0]])
    r = ev.Results(np.array(["a", "b"]), np.array(["w", "v"]), np.array([0, 0]), np.array([1.0, 1.0]),
                   np.array([32, 32]), counts)
    assert ev.perplexity_estimate(r, "paper").value == pytest.approx(1.0)
    assert ev.perplexity_estimate(r, "full").value == pytest.approx(2.0)
    assert ev.perplexity_estimate(ev.Results(r.recording, r.work, r.start, r.nll_sum, r.count), "paper") is None


def test_verdict_rule():
    assert ev.verdict(-0.5, 0.2, -1) == ev.HOLDS
    assert ev.verdict(-0.3, 0.2, -1) == ev.INCONCLUSIVE  # 1.5 SE
    assert ev.verdict(0.5, 0.2, -1) == ev.DOES_NOT_HOLD
    assert ev.verdict(0.5, 0.2, 1) == ev.HOLDS
    assert ev.verdict(0.4, 0.2, 1) == ev.INCONCLUSIVE  # exactly 2 SE is not more than 2
    assert ev.verdict(-0.001, 0.0, -1) == ev.HOLDS
    assert ev.verdict(0.1, float("nan"), 1) == ev.INCONCLUSIVE
    assert ev.combine([ev.HOLDS, ev.HOLDS]) == ev.HOLDS
    assert ev.combine([ev.HOLDS, ev.INCONCLUSIVE]) == ev.INCONCLUSIVE
    assert ev.combine([ev.INCONCLUSIVE, ev.DOES_NOT_HOLD]) == ev.DOES_NOT_HOLD


def test_clustered_se_matches_hand_computation():
    rng = np.random.default_rng(3)
    clusters = np.repeat(["w0", "w1", "w2", "w3", "w4"], [3, 1, 4, 2, 5])
    y = rng.normal(size=clusters.size) + np.repeat(rng.normal(size=5), [3, 1, 4, 2, 5])
    est = ev.mean_estimate(y, clusters)
    # CR1 by hand: G/(G-1) * sum over clusters of the squared summed residuals, over N^2
    g, n, m = 5, y.size, y.mean()
    total = 0.0
    for c in np.unique(clusters):
        total += (y[clusters == c] - m).sum() ** 2
    assert est.value == pytest.approx(m)
    assert est.se == pytest.approx(math.sqrt(g / (g - 1) * total) / n, rel=1e-12)
    # with one unit per cluster it is the usual standard error of the mean
    iid = ev.mean_estimate(y, np.arange(n))
    assert iid.se == pytest.approx(y.std(ddof=1) / math.sqrt(n), rel=1e-12)
    # ratio estimator (NLL per timestep): equal counts reduce it to the mean of per-window means
    counts = np.full(n, 100)
    r = ev.ratio_estimate(y * 100, counts, clusters)
    assert r.value == pytest.approx(m) and r.se == pytest.approx(est.se, rel=1e-12)
    assert math.isnan(ev.mean_estimate(y, np.zeros(n)).se)  # one cluster: unknown


def test_pooled_perplexity_se_matches_the_jackknife():
    rng = np.random.default_rng(5)
    works = np.repeat(np.arange(12), 4)
    p = rng.dirichlet(np.ones(32) * 0.5)
    counts = np.stack([rng.multinomial(200, p) for _ in works])
    est = ev.pooled_perplexity_estimate(counts, works)
    assert est.value == pytest.approx(float(ev.perplexity(counts.sum(0))))
    loo = np.array([ev.perplexity(counts[works != g].sum(0)) for g in range(12)])
    jack = math.sqrt((12 - 1) / 12 * np.sum((loo - loo.mean()) ** 2))
    assert est.se == pytest.approx(jack, rel=0.2)


def test_paired_difference_has_the_smaller_se():
    rng = np.random.default_rng(7)
    works = np.repeat(np.arange(20), 5)
    difficulty = np.repeat(rng.normal(0, 1.0, 20), 5) + rng.normal(0, 0.3, 100)  # shared by both rows
    a = 3.0 + difficulty
    b = 3.05 + difficulty + rng.normal(0, 0.01, 100)
    ea, eb = ev.mean_estimate(a, works), ev.mean_estimate(b, works)
    d = ev.difference(ea, eb)
    assert d.value == pytest.approx(a.mean() - b.mean())
    assert d.se < 0.05 * math.hypot(ea.se, eb.se)
    assert ev.verdict(d.value, d.se, -1) == ev.HOLDS  # a < b, paired
    assert ev.verdict(d.value, math.hypot(ea.se, eb.se), -1) == ev.INCONCLUSIVE  # unpaired could not tell
    with pytest.raises(ValueError):
        ea - ev.mean_estimate(a[:50], works[:50])


def test_selection_is_deterministic_bounded_and_spread_over_works():
    manifest = {"format": data.FORMAT, "kind": "audio", "dtype": "uint8", "n_classes": 256, "sample_rate": 16000,
                "pad_value": 128, "chunk_samples": 2 ** 18, "shards": {}, "files": {
                    f"w{i}/take{j}.wav": {"split": "eval", "piece": f"w{i}", "n_samples": 16000 * (10 + 7 * i) + 123,
                                          "shard": "eval-00000.tfrecord"}
                    for i in range(6) for j in range(2)}}
    windows = ev.list_windows(manifest, "eval", 16000)
    assert len(windows) == sum(2 * (11 + 7 * i) for i in range(6))
    assert all(w.n_real == 123 for w in windows if w.start % 16000 == 0 and w.n_real < 16000)
    picked = ev.select_sequences(windows, 20)
    assert len(picked) == 20 and picked == ev.select_sequences(list(reversed(windows)), 20)
    per_work = {w: sum(p.work == w for p in picked) for w in {p.work for p in picked}}
    assert len(per_work) == 6 and max(per_work.values()) - min(per_work.values()) <= 1
    assert ev.select_sequences(windows, None) == sorted(windows, key=lambda w: (w.recording, w.start))
    assert len(ev.select_sequences(windows, 3)) == 3  # fewer than works: one from each of 3 works
    assert len({p.work for p in ev.select_sequences(windows, 3)}) == 3


def test_results_round_trip_and_align(tmp_path):
    r = ev.Results(np.array(["a", "a", "b"]), np.array(["w", "w", "v"]), np.array([0, 16000, 0]),
                   np.array([1.0, 2.0, 3.0]), np.array([10, 10, 5]), np.arange(3 * 4).reshape(3, 4))
    path = str(tmp_path / ev.SEQUENCES_FILE)
    ev.save_results(path, {("eval", "paper"): r, ("eval", "full"): r.take([2, 0])}, {"step": 7})
    loaded, meta = ev.load_results(path)
    assert meta == {"step": 7}
    np.testing.assert_array_equal(loaded[("eval", "paper")].code_counts, r.code_counts)
    assert loaded[("eval", "paper")].keys() == r.keys()
    a, b = ev.align(loaded[("eval", "paper")], loaded[("eval", "full")])
    assert a.keys() == b.keys() == [("a", 0), ("b", 0)]


def test_trainer_reports_both_protocols_and_writes_per_window_sums(audio_shards, tmp_path):
    from tf_ada.train import Trainer
    exp = configs.table1_row("1.2", "tiny", steps=1)
    t = Trainer(exp, audio_shards, str(tmp_path / "run"), log=lambda s: None)
    result = t.train()  # ends with an evaluation
    for split in ("train", "eval"):
        for protocol in ev.PROTOCOLS:
            for k in ("nll", "perplexity"):
                assert np.isfinite(result[f"{split}_{k}_{protocol}"]), (split, k, protocol)
                assert f"{split}_{k}_{protocol}_se" in result
        assert result[f"{split}_nll"] == result[f"{split}_nll_paper"]
    assert result["eval_sequences_paper"] == 2 and result["eval_timesteps_full"] == 32000  # one 2-s recording
    assert result["corpus_hash"] == data.corpus_hash(audio_shards)
    saved, meta = ev.load_results(str(tmp_path / "run" / ev.SEQUENCES_FILE))
    assert meta["step"] == 1 and set(saved) == {(s, p) for s in ("train", "eval") for p in ev.PROTOCOLS}
    full = saved[("eval", "full")]
    assert ev.nll_estimate(full).value == pytest.approx(result["eval_nll_full"])
    # the same numbers from the Polyak weights through the module's own entry point
    with t.polyak_weights() as model:
        again = ev.evaluate_model(model, audio_shards, splits=["eval"])
    np.testing.assert_allclose(again[("eval", "full")].nll_sum, full.nll_sum, rtol=1e-5)
    # tiny: eval_batches 2 x batch 2 x 256 samples = 1024 timesteps -> the minimum of 2 windows
    assert result["eval_max_sequences"] == 2 and t.eval_budget(final=True) == {"train": 2, "eval": 2}
    # paper scale (no eval_batches): bounded periodic evaluations, the whole held-out split at the end
    import dataclasses
    import types
    paper_like = types.SimpleNamespace(experiment=dataclasses.replace(exp, train=dataclasses.replace(
        exp.train, eval_batches=None)))
    cap = ev.DEFAULT_MAX_SEQUENCES
    assert Trainer.eval_budget(paper_like, final=False) == {"train": cap, "eval": cap}
    assert Trainer.eval_budget(paper_like, final=True) == {"train": cap, "eval": None}


def test_quotient_and_independent_difference():
    rng = np.random.default_rng(11)
    works = np.repeat(np.arange(15), 3)
    a = ev.mean_estimate(rng.normal(2.0, 0.3, 45), works)
    b = ev.mean_estimate(rng.normal(4.0, 0.3, 45), works)
    q = ev.quotient(a, b)
    assert q.value == pytest.approx(a.value / b.value)
    # delta method: se(a / b) ~ sqrt(se_a^2 + q^2 se_b^2 - 2 q cov) / b, here with independent draws
    assert q.se == pytest.approx(math.hypot(a.se, q.value * b.se) / b.value, rel=0.3)
    d, se = ev.independent_difference(a, b)
    assert d == pytest.approx(a.value - b.value) and se == pytest.approx(math.hypot(a.se, b.se))

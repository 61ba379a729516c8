import math

import numpy as np
import pytest
import tensorflow as tf

from tf_ada import ops


def np_mu_law_encode(x, q=256):
    mu = q - 1
    x = np.clip(x, -1, 1)
    f = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.floor((f + 1) / 2 * mu + 0.5).astype(np.int32)


def np_mu_law_decode(c, q=256):
    mu = q - 1
    y = 2 * c.astype(np.float64) / mu - 1
    return np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu


@pytest.mark.parametrize("q", [256, 16])
def test_mu_law_encode_matches_numpy(q):
    x = np.random.RandomState(0).uniform(-1.2, 1.2, size=(4, 1000)).astype(np.float32)
    got = ops.mu_law_encode(x, q).numpy()
    want = np_mu_law_encode(x.astype(np.float64), q)
    # float32 vs float64 may round differently exactly at a level boundary: allow rare off-by-one
    assert np.mean(got != want) < 1e-3 and np.max(np.abs(got - want)) <= 1
    assert got.min() >= 0 and got.max() <= q - 1


def test_mu_law_decode_matches_numpy():
    c = np.arange(256)
    np.testing.assert_allclose(ops.mu_law_decode(c).numpy(), np_mu_law_decode(c), atol=1e-6)


def test_mu_law_known_values():
    assert ops.mu_law_encode([0.0]).numpy()[0] == 128 == ops.mu_law_silence()
    assert ops.mu_law_encode([-1.0, 1.0]).numpy().tolist() == [0, 255]
    assert ops.mu_law_decode([0, 255]).numpy().tolist() == [-1.0, 1.0]


def test_mu_law_round_trip_error_bound():
    x = np.linspace(-1, 1, 100001).astype(np.float32)
    err = np.abs(ops.mu_law_decode(ops.mu_law_encode(x)).numpy() - x)
    # the companded step is 2/255; in the signal domain the error at amplitude |x| is bounded by
    # half a step (1/255) times the expander's slope ln(256) (1 + 255|x'|) / 255 at the far end
    # of the step, |x'| <= |x| + err
    bound = (1 / 255) * math.log(256) * (1 + 255 * (np.abs(x) + err)) / 255 + 1e-6
    assert np.all(err <= bound)
    assert 0.02 < err.max() < 0.0219  # largest step is at full scale: ln(256) * 256 / 255**2
    small = x[np.abs(x) < 0.01]
    assert np.abs(ops.mu_law_decode(ops.mu_law_encode(small)).numpy() - small).max() < 3.2e-4
    # codes survive decode -> encode exactly
    codes = np.arange(256)
    np.testing.assert_array_equal(ops.mu_law_encode(ops.mu_law_decode(codes)).numpy(), codes)


def test_mu_law_clips_out_of_range():
    assert ops.mu_law_encode([-7.0, 3.0]).numpy().tolist() == [0, 255]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_mu_law_rejects_non_finite(bad):
    with pytest.raises(ValueError, match="NaN or inf"):
        ops.mu_law_encode(np.array([0.1, bad], np.float32))


def test_mu_law_rejects_non_finite_in_graph():
    f = tf.function(lambda x: ops.mu_law_encode(x))
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or inf"):
        f(tf.constant([0.0, np.nan]))


def test_mu_law_rejects_integers():
    with pytest.raises(TypeError):
        ops.mu_law_encode(np.array([1, 2]))


def test_receptive_fields_of_paper_stacks():
    # appendix A: local model k=2, 4 x 1..128 -> "1024"; encoder k=3, 2 x 1..128 -> "512" each side
    assert ops.causal_receptive_field(2, ops.dilations(8, 4)) == 1021
    assert ops.noncausal_half_receptive_field(3, ops.dilations(8, 2)) == 510
    assert ops.causal_receptive_field(3, ops.dilations(10, 3)) == 6139
    with pytest.raises(ValueError):
        ops.noncausal_half_receptive_field(2, [1])


def test_sample_logits_is_seeded_and_follows_temperature():
    logits = tf.math.log(tf.constant([[0.7, 0.2, 0.1]] * 4000))
    a = ops.sample_logits(logits, 1.0, tf.constant([1, 2])).numpy()
    b = ops.sample_logits(logits, 1.0, tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.bincount(a, minlength=3) / a.size, [0.7, 0.2, 0.1], atol=0.03)
    cold = ops.sample_logits(logits, 0.05, tf.constant([3, 4])).numpy()
    assert np.mean(cold == 0) > 0.99


def test_hash_uniform_is_uniform_and_backend_independent():
    seed = tf.constant([7, 3])
    u = ops.hash_uniform([200, 256], seed).numpy()
    assert u.min() > 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.005
    np.testing.assert_allclose(np.histogram(u, 10, (0, 1))[0] / u.size, 0.1, atol=0.01)
    assert abs(np.corrcoef(u[:, :-1].ravel(), u[:, 1:].ravel())[0, 1]) < 0.02
    xla = tf.function(lambda s: ops.hash_uniform([200, 256], s), jit_compile=True)(seed).numpy()
    np.testing.assert_array_equal(u, xla)
    assert not np.array_equal(u, ops.hash_uniform([200, 256], tf.constant([7, 4])).numpy())


def test_warmup_learning_rate_is_linear_then_constant():
    from tf_ada.train import WarmupSchedule
    got = [float(ops.warmup_learning_rate(s, 1e-3, 4)) for s in range(6)]
    np.testing.assert_allclose(got, [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3], rtol=1e-6)
    assert float(ops.warmup_learning_rate(0, 1e-3, 0)) == pytest.approx(1e-3)
    schedule = WarmupSchedule(1e-3, 4)
    assert float(schedule(1)) == pytest.approx(5e-4) and schedule.get_config()["warmup_steps"] == 4


def test_shortened_table1_runs_keep_a_proportional_warmup():
    from tf_ada import configs
    assert configs.table1_train("cpu").warmup_steps == 100
    assert configs.table1_train("cpu", steps=30).warmup_steps == 5  # the demo's runs
    assert configs.table1_train("cpu", steps=6000).warmup_steps == 100
    assert configs.table1_train("tiny").warmup_steps == 0


def _ema_reference(n, m, e, counts, sums, gamma, eps):
    """numpy: Eq. 1's K-means step as sonnet's VectorQuantizerEMA computes it (Laplace-smoothed
    counts), with our rule that a code assigned nothing keeps its vector."""
    n2 = gamma * n + (1 - gamma) * counts
    m2 = gamma * m + (1 - gamma) * sums
    total = n2.sum()
    smoothed = (n2 + eps) / (total + len(n2) * eps) * total
    e2 = np.where((counts > 0)[:, None], m2 / smoothed[:, None], e)
    return n2, m2, e2


def test_ema_kmeans_update_matches_numpy():
    rng = np.random.default_rng(0)
    k, d = 7, 3
    n, m, e = rng.uniform(0.5, 3, k), rng.normal(size=(k, d)), rng.normal(size=(k, d))
    counts = np.array([0, 3, 0, 1, 5, 0, 2], np.float64)
    sums = rng.normal(size=(k, d)) * counts[:, None]
    got = ops.ema_kmeans_update(*(tf.constant(a, tf.float32) for a in (n, m, e, counts, sums)), gamma=0.9,
                                epsilon=1e-5)
    for g, r in zip(got, _ema_reference(n, m, e, counts, sums, 0.9, 1e-5)):
        np.testing.assert_allclose(g.numpy(), r, rtol=1e-5, atol=1e-6)
    # a large smoothing constant, so that the smoothing's effect is far above float32 rounding
    got = ops.ema_kmeans_update(*(tf.constant(a, tf.float32) for a in (n, m, e, counts, sums)), gamma=0.9,
                                epsilon=0.5)
    for g, r in zip(got, _ema_reference(n, m, e, counts, sums, 0.9, 0.5)):
        np.testing.assert_allclose(g.numpy(), r, rtol=1e-5, atol=1e-6)
    # unused codes keep their vector exactly; with gamma = 0 a used code moves to its batch mean
    np.testing.assert_array_equal(got[2].numpy()[counts == 0], e[counts == 0].astype(np.float32))
    _, _, e0 = ops.ema_kmeans_update(*(tf.constant(a, tf.float32) for a in (n, m, e, counts, sums)), gamma=0.0,
                                     epsilon=0.0)
    used = counts > 0
    np.testing.assert_allclose(e0.numpy()[used], sums[used] / counts[used, None], rtol=1e-5)


def test_perplexity_from_counts_is_exp_entropy():
    counts = np.array([4.0, 0.0, 2.0, 2.0])
    p = counts / counts.sum()
    ref = math.exp(-sum(x * math.log(x) for x in p if x > 0))
    assert float(ops.perplexity_from_counts(tf.constant(counts, tf.float32))) == pytest.approx(ref, rel=1e-6)
    assert float(ops.perplexity_from_counts(tf.constant([0.0, 5.0, 0.0]))) == pytest.approx(1.0)


def test_inverse_sqrt_newton_schulz_matches_the_eigendecomposition():
    """Well-conditioned covariance: W equals cov^(-1/2) from numpy's eigendecomposition."""
    rng = np.random.RandomState(3)
    a = rng.normal(size=(6, 6))
    cov = a @ a.T + 0.5 * np.eye(6)
    lam, v = np.linalg.eigh(cov)
    reference = v @ np.diag(lam ** -0.5) @ v.T
    w = ops.inverse_sqrt_newton_schulz(tf.constant(cov, tf.float32), iterations=20).numpy()
    np.testing.assert_allclose(w, reference, rtol=2e-3, atol=2e-4)


def test_shrink_to_diagonal_matches_numpy_and_the_shrinkage_follows_n_and_d():
    """(1 - alpha) cov + alpha diag(cov), alpha = D / (n + D): variances kept, correlations
    scaled by 1 - alpha; the cpu-scale batches' values (hop 8: 0.030, hop 64: 0.2)."""
    rng = np.random.RandomState(4)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T
    for n in (5, 45, 2048):
        alpha = ops.covariance_shrinkage(n, 5)
        assert alpha == pytest.approx(5 / (n + 5))
        assert float(ops.covariance_shrinkage(tf.constant(float(n)), 5)) == pytest.approx(alpha)
        reference = (1 - alpha) * cov + alpha * np.diag(np.diag(cov))
        out = ops.shrink_to_diagonal(tf.constant(cov, tf.float32), alpha).numpy()
        np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.diag(out), np.diag(cov), rtol=1e-6)
    assert ops.covariance_shrinkage(2048, 64) == pytest.approx(0.0303, abs=1e-4)
    assert ops.covariance_shrinkage(256, 64) == pytest.approx(0.2)


def test_inverse_sqrt_newton_schulz_is_stable_in_float32_on_a_low_rank_cloud():
    """A query cloud with variances over 6 decades: the whitened covariance never exceeds 1 (the
    uncoupled iteration reaches 450 after 10 steps in float32), the strong directions are whitened
    and the weakest are amplified by at most 1.5^T in standard deviation."""
    rng = np.random.RandomState(0)
    a = rng.normal(size=(64, 64)) * np.logspace(0, -3, 64)[None, :]
    q = rng.normal(size=(16384, 64)) @ a.T
    cov = np.cov(q.T) + 1e-5 * np.eye(64)
    for t in (5, 10, 14):
        w = ops.inverse_sqrt_newton_schulz(tf.constant(cov, tf.float32), iterations=t).numpy().astype(np.float64)
        whitened = np.linalg.eigvalsh(w @ cov @ w.T)
        assert whitened.max() < 1.01, (t, whitened.max())
        lam = np.linalg.eigvalsh(cov) / np.trace(cov)
        assert (whitened > 0.9).sum() >= (lam > 1.5 ** (-2 * t) * 4).sum(), t
        assert np.all(whitened <= lam * 1.5 ** (2 * t) * 1.01)

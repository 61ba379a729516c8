import math

import numpy as np
import pytest
import tensorflow as tf

from tf_ada.layers.quantizers import ArgmaxQuantizer, VectorQuantizerEMA, perplexity_from_counts


def vq(k=6, d=3, **kw):
    """Built through the public constructor only, as a user builds it (no state set by hand)."""
    return VectorQuantizerEMA(k, d, **kw)


def queries(seed, shape, scale=0.5):
    """Queries on the codebook's scale (its initial entries lie in +-1/sqrt(D))."""
    return (scale * np.random.RandomState(seed).normal(size=shape)).astype(np.float32)


def test_nearest_code_matches_numpy():
    layer = vq()
    q = queries(1, (2, 5, 3))
    out = layer(q, training=False)
    e = layer.codebook.numpy()
    dist = ((q[..., None, :] - e[None, None]) ** 2).sum(-1)
    np.testing.assert_array_equal(out.codes.numpy(), dist.argmin(-1))
    np.testing.assert_allclose(layer.distances(q.reshape(-1, 3)).numpy(), dist.reshape(-1, 6), atol=1e-5)
    np.testing.assert_allclose(out.quantized.numpy(), e[dist.argmin(-1)], atol=1e-6)
    commitment = ((q - e[dist.argmin(-1)]) ** 2).mean()
    np.testing.assert_allclose(out.terms["commitment"].numpy(), commitment, rtol=1e-5)
    np.testing.assert_allclose(out.loss.numpy(), 0.25 * commitment, rtol=1e-5)


@pytest.mark.parametrize("eps", [1e-5, 0.5], ids=["paper_eps", "large_eps"])
def test_ema_update_and_laplace_smoothing_match_numpy(eps):
    # a large epsilon makes the smoothing visible: with 1e-5 it changes the codebook by < 1e-5
    gamma, k = 0.9, 6
    layer = vq(k=k, gamma=gamma, epsilon=eps)
    n0, m0 = layer.ema_counts.numpy().copy(), layer.ema_sums.numpy().copy()
    q = queries(2, (4, 8, 3))
    out = layer(q, training=True)
    codes = out.codes.numpy().reshape(-1)
    flat = q.reshape(-1, 3)
    counts = np.bincount(codes, minlength=k).astype(np.float64)
    sums = np.stack([flat[codes == i].sum(0) if (codes == i).any() else np.zeros(3) for i in range(k)])
    n = gamma * n0 + (1 - gamma) * counts
    m = gamma * m0 + (1 - gamma) * sums
    smoothed = (n + eps) / (n.sum() + k * eps) * n.sum()
    np.testing.assert_allclose(layer.ema_counts.numpy(), n, rtol=1e-5)
    np.testing.assert_allclose(layer.ema_sums.numpy(), m, rtol=1e-5, atol=1e-6)
    used = counts > 0
    np.testing.assert_allclose(layer.codebook.numpy()[used], (m / smoothed[:, None])[used], rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(layer.codebook.numpy()[~used], (m0 / n0[:, None])[~used])  # unused: unmoved
    np.testing.assert_allclose(out.counts.numpy(), counts)
    # Laplace smoothing keeps unused codes finite and the total count unchanged
    assert np.isclose(smoothed.sum(), n.sum())


def test_ema_state_moves_only_in_training():
    layer = vq()
    before = [v.numpy().copy() for v in (layer.codebook, layer.ema_counts, layer.ema_sums)]
    q = queries(3, (2, 4, 3))
    layer(q, training=False)
    tf.function(lambda x: layer(x, training=False).codes)(q)
    for b, v in zip(before, (layer.codebook, layer.ema_counts, layer.ema_sums)):
        np.testing.assert_array_equal(b, v.numpy())
    layer(q, training=True)
    assert not np.array_equal(before[0], layer.codebook.numpy())
    assert not layer.trainable_weights  # the codebook learns by K-means, not by gradients


def test_fresh_ema_state_reproduces_the_codebook():
    """Issue 9: the EMA sums used to start at 0, so one step zeroed every unused code."""
    for k, d in ((6, 3), (256, 64)):
        layer = vq(k=k, d=d)
        e, n, m = layer.codebook.numpy(), layer.ema_counts.numpy(), layer.ema_sums.numpy()
        np.testing.assert_array_equal(n, np.ones(k))
        np.testing.assert_array_equal(m, e * n[:, None])
        assert np.abs(e).max() <= 1 / np.sqrt(d) and len(np.unique(e, axis=0)) == k  # distinct codes
    a, b = vq(k=8, d=4), vq(k=8, d=4)
    assert not np.array_equal(a.codebook.numpy(), b.codebook.numpy())  # each layer draws its own


def test_training_steps_move_used_codes_to_cluster_means_and_leave_unused_codes():
    """Many clusters, real training steps under tf.function: codes that get queries follow the EMA
    towards their cluster means; codes that never get any stay exactly where they started."""
    k, d, gamma = 64, 8, 0.8
    layer = vq(k=k, d=d, gamma=gamma)
    e0 = layer.codebook.numpy().copy()
    rng = np.random.RandomState(7)
    centres = e0[:16] + 0.01 * rng.normal(size=(16, d)).astype(np.float32)  # 16 clusters near 16 codes
    step = tf.function(lambda x: (lambda o: (o.codes, o.quantized))(layer(x, training=True)))
    n, m = np.ones(k), e0.astype(np.float64).copy()
    used_ever = np.zeros(k, bool)
    for i in range(20):
        q = (centres[rng.randint(0, 16, 256)] + 0.001 * rng.normal(size=(256, d))).astype(np.float32)
        e_before = layer.codebook.numpy().copy()
        out_codes, out_quantized = step(q[None])
        codes = out_codes.numpy().reshape(-1)
        np.testing.assert_array_equal(codes, (((q[:, None] - e_before[None]) ** 2).sum(-1)).argmin(1))
        np.testing.assert_allclose(out_quantized.numpy()[0], e_before[codes], atol=1e-6)  # pre-update codebook
        counts = np.bincount(codes, minlength=k)
        sums = np.zeros((k, d))
        np.add.at(sums, codes, q)
        n, m = gamma * n + (1 - gamma) * counts, gamma * m + (1 - gamma) * sums
        used_ever |= counts > 0
    e = layer.codebook.numpy()
    assert 8 <= used_ever.sum() <= 16
    np.testing.assert_array_equal(e[~used_ever], e0[~used_ever])
    smoothed = (n + 1e-5) / (n.sum() + k * 1e-5) * n.sum()
    last = counts > 0
    np.testing.assert_allclose(e[last], (m / smoothed[:, None])[last], rtol=1e-3, atol=1e-5)
    for c in np.flatnonzero(last):  # after 20 steps a used code sits at its cluster's mean
        members = q[codes == c]
        assert np.linalg.norm(e[c] - members.mean(0)) < 0.05 * np.linalg.norm(members.mean(0)) + 1e-3


def test_straight_through_gradient_is_identity():
    layer = vq()
    q = tf.constant(queries(4, (2, 5, 3)))
    w = tf.constant(np.random.RandomState(5).normal(size=(2, 5, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(q)
        out = layer(q, training=False)
        y = tf.reduce_sum(w * out.quantized)
    np.testing.assert_allclose(tape.gradient(y, q).numpy(), w.numpy(), atol=1e-6)
    with tf.GradientTape() as tape:  # commitment gradient: 2 beta (q - q_hat) / N, codebook fixed
        tape.watch(q)
        out = layer(q, training=False)
    g = tape.gradient(out.loss, q).numpy()
    q_hat = layer.codebook.numpy()[out.codes.numpy()]
    np.testing.assert_allclose(g, 2 * 0.25 * (q.numpy() - q_hat) / q.numpy().size, atol=1e-6)


def test_dead_code_restart_and_data_init():
    layer = vq(k=8, restart_dead_codes=True, dead_threshold=0.5, gamma=0.5)
    far = layer.codebook.numpy()
    far[5:] = 1e3  # a scenario set by hand: codes 5..7 are never nearest, their counts nearly dead
    layer.codebook.assign(far)
    layer.ema_counts.assign([1.0] * 5 + [0.1] * 3)
    q = queries(6, (1, 50, 3))
    layer(q, training=True)
    flat = q.reshape(-1, 3)
    for e in layer.codebook.numpy()[5:]:  # restarted onto batch queries, counts reset to 1
        assert np.min(np.abs(flat - e).sum(1)) < 1e-5
    np.testing.assert_array_equal(layer.ema_counts.numpy()[5:], 1.0)
    init = vq(k=4, data_init=True, gamma=1.0)  # gamma = 1: the EMA step after the init moves nothing
    init(q, training=True)
    assert init.initialized.numpy() == 1.0
    for e in init.ema_sums.numpy():
        assert np.min(np.abs(flat - e).sum(1)) < 1e-5


def test_perplexity():
    assert np.isclose(perplexity_from_counts(tf.ones([256]) * 7).numpy(), 256, rtol=1e-5)
    assert np.isclose(perplexity_from_counts(tf.constant([0.0, 5.0, 0.0])).numpy(), 1.0)
    p = np.array([1.0, 2.0, 3.0, 0.0])
    pn = p / p.sum()
    ent = -(pn[pn > 0] * np.log(pn[pn > 0])).sum()
    assert np.isclose(perplexity_from_counts(tf.constant(p, tf.float32)).numpy(), math.exp(ent), rtol=1e-5)


def test_amae_simplex_argmax_and_diversity_match_numpy():
    k = 5
    layer = ArgmaxQuantizer(k, nu=0.3)
    a = np.random.RandomState(7).normal(size=(3, 4, k)).astype(np.float32)
    out = layer(a)
    r = np.maximum(a, 0)
    q = r / (r.sum(-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(layer.simplex(a).numpy(), q, atol=1e-6)
    nonzero = r.sum(-1) > 0
    np.testing.assert_allclose(q.sum(-1)[nonzero], 1.0, atol=1e-5)
    assert (q >= 0).all()
    np.testing.assert_array_equal(out.codes.numpy(), q.argmax(-1))
    np.testing.assert_allclose(out.quantized.numpy(), np.eye(k)[q.argmax(-1)], atol=1e-6)
    div = k * ((q.reshape(-1, k).mean(0) - 1 / k) ** 2).sum()
    np.testing.assert_allclose(out.terms["diversity"].numpy(), div, rtol=1e-5)
    np.testing.assert_allclose(out.loss.numpy(), 0.3 * div, rtol=1e-5)


def test_amae_softmax_entropy_loss_and_straight_through():
    k = 4
    layer = ArgmaxQuantizer(k, nonlinearity="softmax")
    a = tf.constant(np.random.RandomState(8).normal(size=(2, 3, k)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(a)
        out = layer(a)
        y = tf.reduce_sum(out.quantized * tf.range(k, dtype=tf.float32))
    q = tf.nn.softmax(a).numpy()
    mean = q.reshape(-1, k).mean(0)
    np.testing.assert_allclose(out.terms["diversity"].numpy(), math.log(k) + (mean * np.log(mean)).sum(), rtol=1e-4)
    # straight-through: the gradient is the softmax's Jacobian applied to the upstream gradient
    with tf.GradientTape() as tape2:
        tape2.watch(a)
        y2 = tf.reduce_sum(tf.nn.softmax(a) * tf.range(k, dtype=tf.float32))
    np.testing.assert_allclose(tape.gradient(y, a).numpy(), tape2.gradient(y2, a).numpy(), atol=1e-6)
    uniform = ArgmaxQuantizer(k)(tf.ones([1, 8, k]))
    assert abs(float(uniform.terms["diversity"])) < 1e-6
    with pytest.raises(ValueError):
        ArgmaxQuantizer(k, nonlinearity="tanh")


def test_standardized_queries_use_batch_statistics_in_training_and_running_ones_in_evaluation():
    """query_norm="standardize": batch normalisation without scale and offset. Training: the batch's
    per-channel mean and variance, differentiated through; their EMA (decay gamma, set by the first
    batch) is kept for evaluation and moves only in training."""
    gamma = 0.9
    layer = vq(k=16, d=4, gamma=gamma, query_norm="standardize")
    rng = np.random.RandomState(8)
    batches = [rng.normal(loc=3.0 + i, scale=5.0, size=(2, 50, 4)).astype(np.float32) for i in range(3)]
    mean, var = None, None
    for i, q in enumerate(batches):
        flat = q.reshape(-1, 4).astype(np.float64)
        bm, bv = flat.mean(0), flat.var(0)
        mean, var = (bm, bv) if i == 0 else (gamma * mean + (1 - gamma) * bm, gamma * var + (1 - gamma) * bv)
        e = layer.codebook.numpy()
        out = layer(q, training=True)
        z = (q - bm) / np.sqrt(bv + 1e-5)
        np.testing.assert_array_equal(out.codes.numpy(), ((z[..., None, :] - e) ** 2).sum(-1).argmin(-1))
        np.testing.assert_allclose(layer.query_mean.numpy(), mean, rtol=1e-4)
        np.testing.assert_allclose(layer.query_var.numpy(), var, rtol=1e-3)
    frozen = layer.query_mean.numpy().copy()
    out = layer(batches[0], training=False)
    np.testing.assert_array_equal(layer.query_mean.numpy(), frozen)
    z = (batches[0] - mean) / np.sqrt(var + 1e-5)
    e = layer.codebook.numpy()
    np.testing.assert_array_equal(out.codes.numpy(), ((z[..., None, :] - e) ** 2).sum(-1).argmin(-1))
    x = tf.constant(batches[1])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y_eval = tf.reduce_sum(layer(x, training=False).quantized)
        y_train = tf.reduce_sum(layer(x, training=True).quantized)
    # evaluation: fixed statistics, d sum / dq = 1 / sqrt(var); training: the statistics move with
    # the batch, so the standardised batch sums to 0 whatever q is and the gradient vanishes
    np.testing.assert_allclose(tape.gradient(y_eval, x).numpy(), np.broadcast_to(1 / np.sqrt(var + 1e-5), x.shape),
                               rtol=1e-4)
    np.testing.assert_allclose(tape.gradient(y_train, x).numpy(), 0.0, atol=1e-5)


@pytest.mark.parametrize("scale", ["tiny", "cpu"])
def test_codebook_scale_matches_the_encoders_queries_after_initialisation(scale):
    """Issue 9: the paper rows' ADA, built as a user builds it, on audio: after the first training
    step (which initialises the query statistics and, with data_init, the codebook), the codebook's
    RMS matches the RMS of the queries it quantises within a factor 1.25 (whitened queries have
    RMS below 1: directions with little variance are only partly whitened), and the first batch
    uses many codes. Without query normalisation the fresh encoder's queries are about 3x smaller
    than the codebook and cluster near a few codes (measured; docs/codebook_cpu.md)."""
    from tf_ada import configs, ops
    from tf_ada.train import build_model
    exp = configs.table1_row("1.2", scale)
    assert exp.model.query_norm == "whiten_shrink" and exp.model.data_init
    ada = build_model(exp.model)
    t = np.arange(8 * 2048).reshape(8, 2048) / 16000.0
    rng = np.random.RandomState(9)
    audio = sum(0.2 * np.sin(2 * np.pi * f * t + p) for f, p in rng.uniform((100, 0), (1000, 6), (3, 2)))
    x = ops.mu_law_encode((audio * np.exp(-3 * (t % 0.5))).astype(np.float32))
    drawn = ada.quantizer.codebook.numpy().copy()
    out = ada(x, training=True)
    q = ada.quantizer.normalize(ada.encoder(x)).numpy()
    query_rms = np.sqrt(np.mean(q ** 2))
    # the constructor's draw (unit scale) never quantises anything: the first step replaces it
    assert not np.allclose(ada.quantizer.codebook.numpy(), drawn)
    rms = np.sqrt(np.mean(ada.quantizer.codebook.numpy() ** 2))
    assert 1 / 1.25 < rms / query_rms < 1.25, (rms, query_rms)
    assert out.quantizer.perplexity.numpy() > 16


def test_data_init_draws_distinct_queries():
    layer = vq(k=64, d=4, data_init=True, gamma=1.0)
    q = queries(10, (1, 80, 4))  # 80 distinct queries for 64 codes
    layer(q, training=True)
    assert len(np.unique(layer.codebook.numpy(), axis=0)) == 64


def test_whitened_queries_use_batch_covariance_in_training_and_running_one_in_evaluation():
    """query_norm="whiten" (issue 9): training whitens each batch by its own mean and covariance
    (decorrelated, unit variance in every direction), and records their EMA (decay gamma, set by
    the first batch) for evaluation; evaluation does not move them."""
    gamma = 0.9
    layer = vq(k=16, d=4, gamma=gamma, query_norm="whiten", data_init=True)
    rng = np.random.RandomState(8)
    mix = np.array([[1.0, 0.9, 0.0, 0.1], [0.0, 0.4, 0.3, 0.0], [0.0, 0.0, 0.2, 0.05], [0.0, 0.0, 0.0, 0.1]])
    batches = [(rng.normal(size=(4, 500, 4)) @ mix + 3.0 + i).astype(np.float32) for i in range(3)]
    mean = cov = None
    for i, q in enumerate(batches):
        flat = q.reshape(-1, 4).astype(np.float64)
        bm, bc = flat.mean(0), np.cov(flat.T, bias=True)
        mean, cov = (bm, bc) if i == 0 else (gamma * mean + (1 - gamma) * bm, gamma * cov + (1 - gamma) * bc)
        z = layer.normalize(tf.constant(q), training=True).numpy().reshape(-1, 4)
        np.testing.assert_allclose(np.cov(z.T, bias=True), np.eye(4), atol=5e-3)
        np.testing.assert_allclose(layer.query_mean.numpy(), mean, rtol=1e-4)
        np.testing.assert_allclose(layer.query_cov.numpy(), cov, rtol=1e-3, atol=1e-5)
    frozen = layer.query_cov.numpy().copy()
    out = layer(batches[0], training=False)
    np.testing.assert_array_equal(layer.query_cov.numpy(), frozen)
    lam, v = np.linalg.eigh(cov + 1e-5 * np.eye(4))
    z = (batches[0] - mean) @ (v @ np.diag(lam ** -0.5) @ v.T)
    e = layer.codebook.numpy()
    np.testing.assert_allclose(layer.normalize(tf.constant(batches[0])).numpy(), z, rtol=2e-3, atol=2e-3)
    assert (out.codes.numpy() == ((z[..., None, :] - e) ** 2).sum(-1).argmin(-1)).mean() > 0.99
    x = tf.constant(batches[1])
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = layer(x, training=True).loss
    grad = tape.gradient(loss, x).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0


def test_shrunk_whitening_shrinks_each_batch_covariance_by_its_query_count():
    """query_norm="whiten_shrink" (issue 9, hop 64): training whitens each batch by its covariance
    shrunk towards the diagonal with alpha = D / (n + D) (n: the batch's queries), records the
    shrunk covariance's running average, and evaluation whitens by it; `calibrate` shrinks with
    the alpha of the batch size it is given, not that of all its queries."""
    d, n = 8, 40  # few queries per batch against D: alpha = 1 / 6
    layer = vq(k=16, d=d, query_norm="whiten_shrink", data_init=True)
    rng = np.random.RandomState(5)
    mix = rng.normal(size=(d, d))
    q = (rng.normal(size=(2, n // 2, d)) @ mix + 1.0).astype(np.float32)
    flat = q.reshape(-1, d).astype(np.float64)
    alpha = d / (n + d)
    cov = np.cov(flat.T, bias=True)
    shrunk = (1 - alpha) * cov + alpha * np.diag(np.diag(cov))
    z = layer.normalize(tf.constant(q), training=True).numpy().reshape(-1, d)
    np.testing.assert_allclose(layer.query_cov.numpy(), shrunk, rtol=1e-3, atol=1e-4)
    lam, v = np.linalg.eigh(shrunk + 1e-5 * np.eye(d))
    expected = (flat - flat.mean(0)) @ (v @ np.diag(lam ** -0.5) @ v.T)
    np.testing.assert_allclose(z, expected, rtol=5e-3, atol=5e-3)
    # whitened by the shrunk covariance, the batch is not exactly white: unit variances, weaker
    # correlations kept (full whitening would give the identity)
    zc = np.cov(z.T, bias=True)
    assert np.abs(zc - np.eye(d)).max() > 0.05
    plain = vq(k=16, d=d, query_norm="whiten").normalize(tf.constant(q), training=True).numpy().reshape(-1, d)
    np.testing.assert_allclose(np.cov(plain.T, bias=True), np.eye(d), atol=1e-2)
    # calibration over 5 batches of n queries shrinks with alpha(n), not alpha(5 n)
    many = (rng.normal(size=(5 * n, d)) @ mix).astype(np.float32)
    layer.calibrate(tf.constant(many), batch_queries=n)
    c = np.cov(many.astype(np.float64).T, bias=True)
    np.testing.assert_allclose(layer.query_cov.numpy(), (1 - alpha) * c + alpha * np.diag(np.diag(c)),
                               rtol=1e-3, atol=1e-4)


def test_whitening_keeps_its_precision_far_from_the_origin():
    """Batch statistics are taken around the batch mean (two passes): queries offset by 300 with
    spreads down to 0.1 are whitened as well as centred ones (uncentred float32 sums gave a
    covariance with negative eigenvalues there, and W ~ 1e26)."""
    rng = np.random.RandomState(1)
    mix = np.linalg.qr(rng.normal(size=(8, 8)))[0] * np.logspace(0, -1, 8)[None, :]  # spreads 1 .. 0.1
    centred = rng.normal(size=(4, 1000, 8)) @ mix.T
    for offset in (0.0, 300.0):
        layer = vq(k=16, d=8, query_norm="whiten")
        z = layer.normalize(tf.constant((centred + offset).astype(np.float32)), training=True).numpy()
        eig = np.linalg.eigvalsh(np.cov(z.reshape(-1, 8).T, bias=True))
        assert np.all(np.isfinite(z)) and eig.max() < 1.02 and eig.min() > 0.9, (offset, eig)

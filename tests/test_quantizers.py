import math

import numpy as np
import pytest
import tensorflow as tf

from tf_ada.layers.quantizers import ArgmaxQuantizer, VectorQuantizerEMA, perplexity_from_counts


def vq(k=6, d=3, **kw):
    layer = VectorQuantizerEMA(k, d, **kw)
    rng = np.random.RandomState(0)
    layer.codebook.assign(rng.normal(size=(k, d)).astype(np.float32))
    layer.ema_sums.assign(layer.codebook.numpy())
    return layer


def test_nearest_code_matches_numpy():
    layer = vq()
    q = np.random.RandomState(1).normal(size=(2, 5, 3)).astype(np.float32)
    out = layer(q, training=False)
    e = layer.codebook.numpy()
    dist = ((q[..., None, :] - e[None, None]) ** 2).sum(-1)
    np.testing.assert_array_equal(out.codes.numpy(), dist.argmin(-1))
    np.testing.assert_allclose(layer.distances(q.reshape(-1, 3)).numpy(), dist.reshape(-1, 6), atol=1e-5)
    np.testing.assert_allclose(out.quantized.numpy(), e[dist.argmin(-1)], atol=1e-6)
    commitment = ((q - e[dist.argmin(-1)]) ** 2).mean()
    np.testing.assert_allclose(out.terms["commitment"].numpy(), commitment, rtol=1e-5)
    np.testing.assert_allclose(out.loss.numpy(), 0.25 * commitment, rtol=1e-5)


def test_ema_update_and_laplace_smoothing_match_numpy():
    gamma, eps, k = 0.9, 1e-5, 6
    layer = vq(k=k, gamma=gamma, epsilon=eps)
    n0, m0 = layer.ema_counts.numpy().copy(), layer.ema_sums.numpy().copy()
    q = np.random.RandomState(2).normal(size=(4, 8, 3)).astype(np.float32)
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
    np.testing.assert_allclose(layer.codebook.numpy(), m / smoothed[:, None], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out.counts.numpy(), counts)
    # Laplace smoothing keeps unused codes finite and the total count unchanged
    assert np.isclose(smoothed.sum(), n.sum())


def test_ema_state_moves_only_in_training():
    layer = vq()
    before = [v.numpy().copy() for v in (layer.codebook, layer.ema_counts, layer.ema_sums)]
    q = np.random.RandomState(3).normal(size=(2, 4, 3)).astype(np.float32)
    layer(q, training=False)
    tf.function(lambda x: layer(x, training=False).codes)(q)
    for b, v in zip(before, (layer.codebook, layer.ema_counts, layer.ema_sums)):
        np.testing.assert_array_equal(b, v.numpy())
    layer(q, training=True)
    assert not np.array_equal(before[0], layer.codebook.numpy())
    assert not layer.trainable_weights  # the codebook learns by K-means, not by gradients


def test_straight_through_gradient_is_identity():
    layer = vq()
    q = tf.constant(np.random.RandomState(4).normal(size=(2, 5, 3)).astype(np.float32))
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
    far[5:] = 1e3  # codes 5..7 are never nearest, and their counts are already nearly dead
    layer.codebook.assign(far)
    layer.ema_counts.assign([1.0] * 5 + [0.1] * 3)
    q = np.random.RandomState(6).normal(size=(1, 50, 3)).astype(np.float32)
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

"""Pure functions: mu-law companding, receptive-field arithmetic, padding, sampling.

Everything here is weight-free maths (STYLE.md practice 1). Functions accept numpy
arrays or tensors and return tensors unless stated otherwise.

Paper: Dieleman, van den Oord & Simonyan (2018), section 4 / appendix B: audio is
16 kHz, 8-bit mu-law (256 classes), as in WaveNet (van den Oord et al. 2016a, sec. 2.2).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import tensorflow as tf

QUANTIZATION_CHANNELS = 256
SAMPLE_RATE = 16000


def _check_finite(x: tf.Tensor, what: str) -> None:
    if tf.executing_eagerly():
        if not bool(tf.reduce_all(tf.math.is_finite(x))):
            raise ValueError(f"{what} contains NaN or inf values; mu-law encoding needs finite audio")
    else:  # inside a graph: an assertion op with the same message
        tf.debugging.assert_all_finite(x, f"{what} contains NaN or inf values")


def mu_law_encode(audio, quantization_channels: int = QUANTIZATION_CHANNELS) -> tf.Tensor:
    """Mu-law companding followed by uniform quantisation (WaveNet sec. 2.2).

    f(x) = sign(x) * ln(1 + mu |x|) / ln(1 + mu), mu = quantization_channels - 1; then
    f in [-1, 1] is mapped to the nearest of `quantization_channels` levels.

    Args:
      audio: float array, any shape, nominally in [-1, 1]. Values outside are clipped.
        NaN or inf raise ValueError (eagerly) or an InvalidArgument error (in a graph).
      quantization_channels: number of levels Q (256 in the paper).

    Returns:
      int32 tensor of the same shape with values in [0, Q - 1]; silence (0.0) maps to Q // 2.
    """
    x = tf.convert_to_tensor(audio)
    if not x.dtype.is_floating:
        raise TypeError(f"mu_law_encode expects float audio, got {x.dtype.name}")
    x = tf.cast(x, tf.float32)
    _check_finite(x, "audio")
    mu = float(quantization_channels - 1)
    x = tf.clip_by_value(x, -1.0, 1.0)
    companded = tf.sign(x) * tf.math.log1p(mu * tf.abs(x)) / math.log1p(mu)
    return tf.cast(tf.floor((companded + 1.0) / 2.0 * mu + 0.5), tf.int32)


def mu_law_decode(codes, quantization_channels: int = QUANTIZATION_CHANNELS) -> tf.Tensor:
    """Inverse of `mu_law_encode`: integer levels -> float audio in [-1, 1].

    Args:
      codes: integer array, any shape, values in [0, Q - 1].
      quantization_channels: number of levels Q.

    Returns:
      float32 tensor of the same shape.
    """
    mu = float(quantization_channels - 1)
    y = 2.0 * tf.cast(codes, tf.float32) / mu - 1.0
    return tf.sign(y) * (tf.pow(1.0 + mu, tf.abs(y)) - 1.0) / mu


def mu_law_silence(quantization_channels: int = QUANTIZATION_CHANNELS) -> int:
    """The code of 0.0 after `mu_law_encode` (128 for Q = 256)."""
    return quantization_channels // 2


# --- receptive fields -------------------------------------------------------------------------

def dilations(n_stages: int, n_repeats: int) -> list[int]:
    """Dilation pattern of a WaveNet stack: (1, 2, ..., 2**(n_stages-1)) repeated `n_repeats` times."""
    return [2 ** i for i in range(n_stages)] * n_repeats


def causal_receptive_field(filter_length: int, dilation_list: Sequence[int]) -> int:
    """Receptive field, in timesteps, of a stack of causal dilated convolutions.

    A layer with filter length k and dilation d looks (k - 1) * d steps into the past, so
    output t depends on inputs t - sum_i (k - 1) d_i ... t: RF = 1 + (k - 1) * sum_i d_i.
    For the paper's local model (k = 2, 4 x dilations 1..128) this is 1021 ("1024", app. A).
    """
    return 1 + (filter_length - 1) * int(sum(dilation_list))


def noncausal_half_receptive_field(filter_length: int, dilation_list: Sequence[int]) -> int:
    """One-sided receptive field of centred (non-causal) dilated convolutions.

    A centred layer with odd filter length k and dilation d sees (k - 1) / 2 * d steps to each
    side. For the paper's encoder (k = 3, 2 x dilations 1..128) this is 510 ("512", app. A).
    """
    if filter_length % 2 != 1:
        raise ValueError(f"non-causal convolutions need an odd filter length, got {filter_length}")
    return (filter_length - 1) // 2 * int(sum(dilation_list))


def causal_pad(x: tf.Tensor, n_steps: int, value=0) -> tf.Tensor:
    """Pads `n_steps` steps at the start of the time axis of x `[batch, time, ...]`."""
    rank = len(x.shape)
    paddings = [[0, 0], [n_steps, 0]] + [[0, 0]] * (rank - 2)
    return tf.pad(x, paddings, constant_values=value)


# --- sampling ---------------------------------------------------------------------------------

def sample_logits(logits: tf.Tensor, temperature, seed: tf.Tensor) -> tf.Tensor:
    """Draws one class per row of logits `[batch, classes]` at a temperature, statelessly.

    Args:
      logits: float `[batch, classes]`.
      temperature: scalar > 0; 0 is not allowed (use argmax yourself for greedy decoding).
      seed: int32 `[2]` stateless seed; the same seed gives the same draw.

    Returns:
      int32 `[batch]`.

    Gumbel-max over `hash_uniform` noise: TensorFlow's own stateless generators give different
    numbers with and without XLA, and the generation loop is compiled either way.
    """
    scaled = tf.cast(logits, tf.float32) / tf.cast(temperature, tf.float32)
    u = hash_uniform(tf.shape(scaled), seed)
    return tf.argmax(scaled - tf.math.log(-tf.math.log(u)), axis=-1, output_type=tf.int32)


def _mix32(x: tf.Tensor) -> tf.Tensor:
    # "lowbias32" integer hash (C. Wellons): good avalanche, plain 32-bit integer ops
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    x = x * tf.constant(0x7FEB352D, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15))
    x = x * tf.constant(0x846CA68B, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def hash_uniform(shape, seed: tf.Tensor) -> tf.Tensor:
    """Counter-based uniform noise in (0, 1), float32 of `shape`, identical on every backend.

    Args:
      shape: output shape (1-D int tensor or list).
      seed: int32 `[2]`; the same seed gives the same numbers, inside XLA or not.
    """
    seed = tf.cast(tf.convert_to_tensor(seed), tf.uint32)
    n = tf.reduce_prod(shape)
    counter = tf.cast(tf.range(n), tf.uint32)
    key = _mix32(seed[0] * tf.constant(0x9E3779B9, tf.uint32) + _mix32(seed[1] + tf.constant(0x85EBCA6B, tf.uint32)))
    bits = _mix32(_mix32(counter + key) ^ key)
    # 24 high bits -> (0, 1), never 0 or 1
    u = (tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) + 0.5) / 16777216.0
    return tf.reshape(u, shape)


def nats_to_bits(nats):
    return np.asarray(nats) / math.log(2.0)


def warmup_learning_rate(step, learning_rate: float, warmup_steps: int) -> tf.Tensor:
    """Linear warm-up: learning_rate * min(1, (step + 1) / warmup_steps) for 0-based step.

    Adam's first updates move every weight by about the full step size whatever the gradient's
    size; with a fresh encoder that shifts all VQ-VAE queries together, faster than the K-means
    codebook (decay gamma) can follow, and codes die within a few steps (issue 9). A warm-up
    keeps those first moves small.
    """
    step = tf.cast(step, tf.float32)
    if warmup_steps <= 0:
        return tf.constant(learning_rate, tf.float32)
    return learning_rate * tf.minimum(1.0, (step + 1.0) / float(warmup_steps))


def perplexity_from_counts(counts: tf.Tensor) -> tf.Tensor:
    """exp(entropy) of the usage distribution counts / sum(counts) (sec. 4.1: at most K).

    Args:
      counts: float32 `[K]`, how often each code was chosen.
    Returns:
      scalar float32 in [1, K] (1 for no counts at all)."""
    p = counts / tf.maximum(tf.reduce_sum(counts), 1e-12)
    return tf.exp(-tf.reduce_sum(tf.math.xlogy(p, p)))


def ema_kmeans_update(ema_counts, ema_sums, codebook, counts, sums, gamma, epsilon: float = 1e-5):
    """One K-means step of the VQ-VAE codebook by exponential moving averages (sec. 3.1, Eq. 1's
    codebook term replaced as in van den Oord et al. 2017, app. A.1; sonnet's VectorQuantizerEMA):

        N_k <- gamma N_k + (1 - gamma) n_k          m_k <- gamma m_k + (1 - gamma) sum_{z(x)=k} q(x)
        e_k <- m_k / N~_k,  N~_k = (N_k + eps) / (sum_j N_j + K eps) * sum_j N_j   (Laplace smoothing)

    except that a code assigned nothing in this step keeps its vector e_k (a centroid without points
    does not move; sonnet's smoothing would drag long-unused codes towards 0, where they tie).

    Args:
      ema_counts: N, float32 `[K]`; ema_sums: m, float32 `[K, D]`; codebook: e, float32 `[K, D]`.
      counts: n_k of this step, float32 `[K]`; sums: this step's sum of queries per code, `[K, D]`.
      gamma: the decay (gamma); epsilon: the smoothing constant.
    Returns:
      (new N `[K]`, new m `[K, D]`, new e `[K, D]`).
    """
    n = gamma * ema_counts + (1.0 - gamma) * counts
    m = gamma * ema_sums + (1.0 - gamma) * sums
    total = tf.reduce_sum(n)
    k = tf.cast(tf.shape(n)[0], n.dtype)
    smoothed = (n + epsilon) / (total + k * epsilon) * total
    return n, m, tf.where((counts > 0)[:, None], m / smoothed[:, None], codebook)


def covariance_shrinkage(n_samples, n_channels: int):
    """The weight alpha = D / (n + D) that `shrink_to_diagonal` gives the diagonal of a covariance
    estimated from n samples of D channels: the sample covariance's eigenvalues spread by about
    (1 +- sqrt(D / n))^2 around the true ones (Marchenko-Pastur), so its weakest directions are
    underestimated and whitening by it inflates them most where n / D is small; alpha moves from
    plain whitening (alpha -> 0 for n >> D) towards per-channel standardisation (alpha = 1/2 at
    n = D, -> 1 as n / D -> 0). A simple rule of
    the Ledoit-Wolf kind (Ledoit & Wolf 2004 estimate alpha from the data; this fixes it from n and
    D). cpu-scale VQ-VAE batches: hop 8, 2,048 queries of 64 channels -> 0.030; hop 64, 256 -> 0.2.

    Args:
      n_samples: n, the samples (queries) of one estimate (a number or a scalar tensor).
      n_channels: D.
    Returns:
      alpha in (0, 1), float32 (a tensor when `n_samples` is one).
    """
    d = float(n_channels)
    return d / (tf.cast(n_samples, tf.float32) + d) if tf.is_tensor(n_samples) else d / (float(n_samples) + d)


def shrink_to_diagonal(cov: tf.Tensor, alpha) -> tf.Tensor:
    """(1 - alpha) cov + alpha diag(cov): the covariance `[D, D]` shrunk towards its diagonal,
    which keeps every channel's variance and scales every correlation by 1 - alpha."""
    diagonal = tf.linalg.diag(tf.linalg.diag_part(cov))
    return (1.0 - alpha) * cov + alpha * diagonal


def inverse_sqrt_newton_schulz(cov: tf.Tensor, iterations: int = 10) -> tf.Tensor:
    """An approximation of cov^(-1/2) by the coupled Newton-Schulz iteration (Higham 2008, sec. 6.7;
    the whitening of IterNorm, Huang et al. 2019), differentiable by plain matrix products (no
    eigendecomposition, whose gradient diverges when eigenvalues are close, as the many small
    ones of a low-rank query cloud are):

        S = cov / tr(cov),  Y_0 = S,  Z_0 = I,  T_k = (3 I - Z_k Y_k) / 2,  Y_{k+1} = Y_k T_k,
        Z_{k+1} = T_k Z_k,  W = Z_T / sqrt(tr(cov)).

    Z_k converges to S^(-1/2). Along an eigenvector with eigenvalue lambda (of S), Z_k grows by
    about 1.5x per step until it reaches lambda^(-1/2): directions holding more than about
    1.5^(-2T) of the total variance are whitened, weaker ones are amplified by at most 1.5^T (a
    bounded, partial whitening). The coupled form stays stable in float32, where the single
    iteration P <- (3 P - P^3 S) / 2 diverges after about 9 steps on a low-rank cloud (measured).

    Args:
      cov: float32 `[D, D]` symmetric positive semi-definite (not all zero).
      iterations: T.
    Returns:
      W float32 `[D, D]`, with W cov W ~ I on the whitened directions.
    """
    d = tf.shape(cov)[0]
    trace = tf.linalg.trace(cov)
    eye = tf.eye(d, dtype=cov.dtype)
    y, z = cov / trace, eye
    for _ in range(int(iterations)):
        t = 1.5 * eye - 0.5 * tf.matmul(z, y)
        y, z = tf.matmul(y, t), tf.matmul(t, z)
    return z * tf.math.rsqrt(trace)

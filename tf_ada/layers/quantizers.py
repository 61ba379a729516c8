"""Discrete bottlenecks of the ADA: VQ-VAE (sec. 3.1, Eq. 1) and the argmax autoencoder (sec. 3.2, Eq. 2).

Both return a `QuantizerOutput` with every term separately (no `add_loss`), because PBT fitness,
training logs and analysis need them:
  quantized   straight-through output q + [q_hat - q]           `[B, T, D]`
  codes       integer codes                                       `[B, T]`
  loss        the quantiser's total loss term (weighted)           scalar
  terms       dict of named unweighted terms                       scalars
  perplexity  exp(entropy of code usage in this batch)             scalar
  counts      code usage counts in this batch (all replicas)       `[K]`

Notation ([y] = stop_gradient(y)): q query, q_hat quantised query, K codes, D query size.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import keras
import tensorflow as tf

from tf_ada import ops


@dataclasses.dataclass
class QuantizerOutput:
    quantized: tf.Tensor
    codes: tf.Tensor
    loss: tf.Tensor
    terms: dict
    perplexity: tf.Tensor
    counts: tf.Tensor


perplexity_from_counts = ops.perplexity_from_counts  # exp(entropy of code usage), sec. 4.1


def _replica_sum(values):
    """Sums tensors over the replicas of a distribution strategy (identity without one)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return values
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, values)


QUERY_NORMS = ("none", "l2", "standardize", "whiten", "whiten_shrink")
WHITENING = ("whiten", "whiten_shrink")  # query norms with a covariance
STANDARDISING = ("standardize",) + WHITENING  # query norms with batch statistics
WHITEN_ITERATIONS = 10  # T of ops.inverse_sqrt_newton_schulz


class _Hyperparameters:
    """beta and gamma of a `VectorQuantizerEMA` as variables. A plain object (neither a Keras layer
    nor a `tf.Module`), so that neither Keras nor tf.train.Checkpoint tracks what it holds."""

    def __init__(self, beta: float, gamma: float):
        kwargs = dict(trainable=False, dtype=tf.float32, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.beta = tf.Variable(float(beta), name="beta", **kwargs)
        self.gamma = tf.Variable(float(gamma), name="gamma", **kwargs)


class VectorQuantizerEMA(keras.layers.Layer):
    """VQ-VAE bottleneck with an exponentially smoothed K-means codebook (sec. 3.1, Eq. 1).

        L = -log p(x | q_hat) + || [q] - q_hat ||^2 + beta || q - [q_hat] ||^2

    q_hat is the nearest codebook vector (Euclidean). The codebook term is not optimised by
    gradients: as in the paper, the codebook follows K-means with decay gamma,
        N_k <- gamma N_k + (1 - gamma) n_k,      m_k <- gamma m_k + (1 - gamma) sum_{i: z_i = k} q_i,
        e_k  = m_k / N~_k,   N~_k = (N_k + eps) / (sum_j N_j + K eps) * sum_j N_j   (Laplace smoothing),
    where n_k is the number of queries assigned to code k in the batch. A code with n_k = 0 keeps
    e_k (our choice: sonnet divides anyway, which pulls a long-unused code towards 0).
    It is still reported as `terms["codebook"]`. This is the update of sonnet's
    `VectorQuantizerEMA` (van den Oord et al. 2017, app. A.1), Laplace smoothing included.

    Order within a training step (pinned by tests): codes, q_hat, the straight-through output and
    both loss terms use the codebook as it was at the start of the step (the one that defined the
    nearest-neighbour assignment); the K-means update then moves it for the next step.
    Initial state: N_k = 1 and m_k = e_k, so the EMA state reproduces the initial codebook.
    Polyak averaging (train.py) averages the codebook with the trainable weights, so evaluation
    sees an encoder, codebook and modulator averaged over the same window.

    Args:
      n_codes: K (256 in the paper).
      code_channels: D, the query dimension.
      beta: commitment scale (beta in Eq. 1; tuned per architecture, value not given).
      gamma: EMA decay of the K-means statistics (gamma; value not given; our default 0.99).
      epsilon: Laplace smoothing constant.
      data_init: (off for the paper rows) on the first training batch, set the codebook to
        randomly chosen queries of that batch.
      restart_dead_codes: (off for the paper rows) codes whose smoothed count N_k falls below
        `dead_threshold` are moved to random queries of the current batch.
      query_norm: how queries are normalised before the nearest-code search (not in the paper;
        our remedy for the early collapse, see the README):
        "none": the paper as written.
        "l2": unit-length queries (q <- q / ||q||, ViT-VQGAN's l2-normalised codes, Yu et al.
          2022); the codebook starts as K random unit vectors.
        "standardize": every channel standardised, q <- (q - mu) / sqrt(var + 1e-5), as batch
          normalisation without learned scale and offset (Ioffe & Szegedy 2015): in training mu
          and var are the batch's statistics over all replicas, differentiated through; in
          evaluation, their running averages (decay gamma, set by the first training batch).
          The codebook starts as N(0, 1) draws, the scale of the standardised queries. The
          queries then keep unit variance per channel: neither the encoder's offset and scale
          drifting away from the codebook nor the commitment term shrinking all queries onto
          one code can happen, the two ways codes died within 50 steps (issue 9).
        "whiten": decorrelated as well, q <- W (q - mu) with W = Sigma^(-1/2) of the queries'
          covariance Sigma, by `ops.inverse_sqrt_newton_schulz` (IterNorm, Huang et al. 2019;
          T = 10, which whitens every direction holding more than about 3e-4 of the variance);
          batch statistics differentiated through in training, running averages (decay gamma)
          in evaluation, as "standardize". Standardised queries of cpu-scale #1.2 lie on a
          1-2-dimensional cloud after 600 steps (participation ratio 1.45: one direction holds
          82 % of the variance), so the codes can only tile a line; whitening spreads the cloud
          over every direction the encoder varies in (issue 9).
        "whiten_shrink": "whiten" with each batch's covariance shrunk towards its diagonal,
          Sigma <- (1 - alpha) Sigma + alpha diag(Sigma), alpha = D / (n + D) for a batch of n
          queries (`ops.covariance_shrinkage`): a covariance of D = 64 channels estimated from
          the 256 queries of a cpu-scale hop-64 batch has its weakest directions underestimated
          about 4x (Marchenko-Pastur), and whitening by it inflates them; alpha is 0.2 there
          and 0.03 for the 2,048 queries of a hop-8 batch. The running covariance averages the
          shrunk batch covariances, and `calibrate` shrinks with the training batch's alpha, so
          evaluation whitens as training does on average.

    The EMA statistics change only when `training=True`. Under a distribution strategy, the
    per-code counts and sums are summed over replicas before the update, so every replica holds
    the same codebook.

    beta and gamma are hyperparameters held in float32 `tf.Variable`s (`self.beta`, `self.gamma`),
    so that population based training can change them between steps of an already compiled
    (XLA) training step: `set_hyperparameters(beta=..., gamma=...)` takes effect at the next
    step. They are neither trainable nor weights of the layer: not in `variables`, not Polyak
    averaged and not in checkpoints (the run folder's experiment.json holds their values, so
    checkpoints written before they were variables still restore exactly).
    """

    def __init__(self, n_codes: int, code_channels: int, beta: float = 0.25, gamma: float = 0.99,
                 epsilon: float = 1e-5, data_init: bool = False, restart_dead_codes: bool = False,
                 dead_threshold: float = 1e-3, query_norm: str = "none", **kwargs):
        super().__init__(**kwargs)
        self.n_codes, self.code_channels = int(n_codes), int(code_channels)
        self.epsilon = float(epsilon)
        self._hyperparameters = _Hyperparameters(beta, gamma)
        self.data_init, self.restart_dead_codes = bool(data_init), bool(restart_dead_codes)
        self.dead_threshold = float(dead_threshold)
        if query_norm not in QUERY_NORMS:
            raise ValueError(f"query_norm must be one of {QUERY_NORMS}, got {query_norm!r}")
        self.query_norm = query_norm
        # The EMA state starts consistent with the codebook: N_k = 1 and m_k = e_k N_k, so the first
        # K-means step (below) moves e_k only by what its code is assigned, and an unused code
        # stays exactly where it was (N_k, m_k both shrink by gamma; their ratio is unchanged up to
        # the Laplace smoothing). The random draw is made once and shared by both variables.
        if query_norm == "l2":  # unit vectors, the scale of the normalised queries
            start = tf.math.l2_normalize(keras.initializers.RandomNormal()((self.n_codes, self.code_channels)), -1)
        elif query_norm in STANDARDISING:  # the scale of standardised queries
            start = keras.initializers.RandomNormal(stddev=1.0)((self.n_codes, self.code_channels))
        else:
            limit = 1.0 / math.sqrt(self.code_channels)
            start = keras.initializers.RandomUniform(-limit, limit)((self.n_codes, self.code_channels))
        self.codebook = self.add_weight(name="codebook", shape=(self.n_codes, self.code_channels),
                                        initializer=lambda shape, dtype=None: start, trainable=False,
                                        aggregation="mean")
        self.ema_counts = self.add_weight(name="ema_counts", shape=(self.n_codes,), initializer="ones",
                                          trainable=False, aggregation="mean")
        self.ema_sums = self.add_weight(name="ema_sums", shape=(self.n_codes, self.code_channels),
                                        initializer=lambda shape, dtype=None: start, trainable=False,
                                        aggregation="mean")
        self.initialized = self.add_weight(name="initialized", shape=(), initializer="zeros", trainable=False,
                                           aggregation="mean")
        if query_norm in STANDARDISING:
            self.query_mean = self.add_weight(name="query_mean", shape=(self.code_channels,), initializer="zeros",
                                              trainable=False, aggregation="mean")
            if query_norm == "standardize":
                self.query_var = self.add_weight(name="query_var", shape=(self.code_channels,), initializer="ones",
                                                 trainable=False, aggregation="mean")
            else:
                self.query_cov = self.add_weight(name="query_cov", shape=(self.code_channels, self.code_channels),
                                                 initializer="identity", trainable=False, aggregation="mean")
            self.query_stats_seen = self.add_weight(name="query_stats_seen", shape=(), initializer="zeros",
                                                    trainable=False, aggregation="mean")
        self.built = True

    def build(self, input_shape):
        pass  # weights are created in __init__

    @property
    def beta(self) -> tf.Variable:
        """beta of Eq. 1 (a float32 variable; see `set_hyperparameters`)."""
        return self._hyperparameters.beta

    @property
    def gamma(self) -> tf.Variable:
        """gamma, the K-means EMA decay (a float32 variable; see `set_hyperparameters`)."""
        return self._hyperparameters.gamma

    def set_hyperparameters(self, beta: Optional[float] = None, gamma: Optional[float] = None) -> None:
        """Sets beta and/or gamma; the next call (compiled training steps included) uses them."""
        if beta is not None:
            self.beta.assign(float(beta))
        if gamma is not None:
            self.gamma.assign(float(gamma))

    def get_config(self):
        return {**super().get_config(), "n_codes": self.n_codes, "code_channels": self.code_channels,
                "beta": float(self.beta.numpy()), "gamma": float(self.gamma.numpy()), "epsilon": self.epsilon,
                "data_init": self.data_init,
                "restart_dead_codes": self.restart_dead_codes, "dead_threshold": self.dead_threshold,
                "query_norm": self.query_norm}

    def distances(self, flat: tf.Tensor, codebook: Optional[tf.Tensor] = None) -> tf.Tensor:
        """Squared Euclidean distances `[N, K]` of queries `[N, D]` to the codebook `[K, D]`
        (default: the current one)."""
        e = tf.convert_to_tensor(self.codebook) if codebook is None else codebook
        return (tf.reduce_sum(flat ** 2, 1, keepdims=True) - 2.0 * tf.matmul(flat, e, transpose_b=True)
                + tf.reduce_sum(e ** 2, 1)[None, :])

    def normalize(self, q: tf.Tensor, training=False) -> tf.Tensor:
        """The queries `[..., D]` as they are quantised (see `query_norm`). With batch statistics
        ("standardize", "whiten", "whiten_shrink") and training=True, this uses and records the
        batch's statistics."""
        if self.query_norm == "l2":
            return tf.math.l2_normalize(q, -1, epsilon=1e-12)
        if not self.statistics:
            return q
        if training:
            mean, second = self._moments(q)
            self._update_running(mean, second)
        else:
            mean, second = (tf.convert_to_tensor(v) for v in self.statistics)
        if self.query_norm == "standardize":
            return (q - mean) * tf.math.rsqrt(second + 1e-5)
        w = ops.inverse_sqrt_newton_schulz(second + 1e-5 * tf.eye(self.code_channels, dtype=second.dtype),
                                           WHITEN_ITERATIONS)
        return tf.tensordot(q - mean, w, axes=[[-1], [0]])  # W is symmetric

    def _moments(self, q: tf.Tensor, batch_queries=None):
        """Mean `[D]` and variance `[D]` ("standardize") or covariance `[D, D]` (whitening; shrunk
        for "whiten_shrink" with the alpha of `batch_queries` queries, default: all of them) of
        the queries `[..., D]` over all replicas, differentiable. Two passes (the mean first, then
        sums around it): uncentred sums lose float32's precision when the queries' offset is large
        against their spread, giving a covariance with negative eigenvalues, on which the
        whitening diverges."""
        flat = tf.cast(tf.reshape(q, [-1, self.code_channels]), tf.float32)
        total, count = _replica_sum([tf.reduce_sum(flat, 0), tf.cast(tf.shape(flat)[0], tf.float32)])
        mean = total / count
        centred = flat - mean
        if self.query_norm == "standardize":
            return mean, _replica_sum(tf.reduce_sum(tf.square(centred), 0)) / count
        cov = _replica_sum(tf.matmul(centred, centred, transpose_a=True)) / count
        cov = 0.5 * (cov + tf.transpose(cov))
        if self.query_norm == "whiten_shrink":
            n = count if batch_queries is None else float(batch_queries)
            cov = ops.shrink_to_diagonal(cov, ops.covariance_shrinkage(n, self.code_channels))
        return mean, cov

    def _update_running(self, mean, second):
        """Running averages (decay gamma; the first batch sets them) of the batch statistics."""
        w = tf.where(self.query_stats_seen > 0.5, 1.0 - self.gamma, 1.0)
        for variable, value in zip(self.statistics, (mean, second)):
            variable.assign((1.0 - w) * variable + w * tf.stop_gradient(value))
        self.query_stats_seen.assign(1.0)

    @property
    def statistics(self) -> list:
        """The statistics of the query normalisation, [mean, variance or covariance] ([] without
        one): functions of the encoder's weights, so an evaluation with Polyak weights needs its
        own (`calibrate`)."""
        if self.query_norm == "standardize":
            return [self.query_mean, self.query_var]
        if self.query_norm in WHITENING:
            return [self.query_mean, self.query_cov]
        return []

    def calibrate(self, flat: tf.Tensor, batch_queries=None) -> None:
        """Sets the evaluation statistics to those of raw queries `flat` `[N, D]` (the queries of
        the weights being evaluated; see `Trainer.calibrate_polyak`), from batches of
        `batch_queries` queries each ("whiten_shrink" shrinks with that alpha, as training does;
        default: N). The EMA running statistics of training lag behind the live encoder and belong
        to it, not to the Polyak-averaged one:
        cpu-scale #1.2 with whitened queries used 126 held-out codes at perplexity 31 with them,
        148 at 90.5 once calibrated, on 4 held-out batches (issue 9; standardised queries: 77 / 45.3
        against 79 / 47.4). `query_stats_seen` is left alone: it belongs to the running statistics."""
        if not self.statistics:
            return
        for variable, value in zip(self.statistics, self._moments(flat, batch_queries)):
            variable.assign(value)

    def lookup(self, codes: tf.Tensor) -> tf.Tensor:
        """Codebook vectors of int codes `[...]` -> `[..., D]`."""
        return tf.gather(tf.convert_to_tensor(self.codebook), codes)

    def call(self, q: tf.Tensor, training=False) -> QuantizerOutput:
        """q: float32 `[B, T, D]` queries -> `QuantizerOutput`; with a `query_norm`, q is normalised
        first and `quantized`, the terms and the codebook live in the normalised space."""
        q = self.normalize(q, training=training)
        flat = tf.reshape(q, [-1, self.code_channels])
        if training and self.data_init:
            self._maybe_data_init(flat)
        codebook = tf.identity(self.codebook)  # this step's codebook, read before the K-means update
        codes_flat = tf.argmin(self.distances(flat, codebook), axis=1, output_type=tf.int32)
        q_hat = tf.reshape(tf.gather(codebook, codes_flat), tf.shape(q))
        one_hot = tf.one_hot(codes_flat, self.n_codes, dtype=flat.dtype)
        counts, sums = _replica_sum([tf.reduce_sum(one_hot, 0), tf.matmul(one_hot, flat, transpose_a=True)])
        if training:
            with tf.control_dependencies([q_hat]):
                self._ema_update(counts, sums, flat)
        codebook_loss = tf.reduce_mean(tf.square(tf.stop_gradient(q) - q_hat))
        commitment = tf.reduce_mean(tf.square(q - tf.stop_gradient(q_hat)))
        quantized = q + tf.stop_gradient(q_hat - q)  # straight-through: d quantized / d q = I
        return QuantizerOutput(quantized=quantized, codes=tf.reshape(codes_flat, tf.shape(q)[:-1]),
                               loss=self.beta * commitment,
                               terms={"commitment": commitment, "codebook": codebook_loss},
                               perplexity=perplexity_from_counts(counts), counts=counts)

    def _ema_update(self, counts, sums, flat):
        # Eq. 1's K-means step by EMA (ops.ema_kmeans_update): a code assigned nothing in this step
        # keeps its vector; without that, the smoothing drags long-unused codes towards 0 (ties)
        n, m, codebook = ops.ema_kmeans_update(self.ema_counts, self.ema_sums, self.codebook, counts, sums,
                                               self.gamma, self.epsilon)
        if self.restart_dead_codes:
            dead = n < self.dead_threshold
            fresh = self._random_queries(flat)
            codebook = tf.where(dead[:, None], fresh, codebook)
            m = tf.where(dead[:, None], fresh, m)
            n = tf.where(dead, tf.ones_like(n), n)
        self.ema_counts.assign(n)
        self.ema_sums.assign(m)
        self.codebook.assign(codebook)

    def _random_queries(self, flat):
        """K distinct queries of this batch (replica 0's, shared with all replicas): without
        replacement, so no two codes start equal (the first of two equal codes would win every
        argmin and the other would never move); if the batch has fewer than K queries, each is
        used about K / n times (cycling through one permutation)."""
        # a stateless draw (a fixed seed; the queries differ from batch to batch), so the XLA
        # training step, which ignores stateful ops' seeds, picks the same queries as the plain one
        n = tf.shape(flat)[0]
        order = tf.argsort(tf.random.stateless_uniform(tf.reshape(n, [1]), seed=[1009, 0], alg="philox"))
        idx = tf.gather(order, tf.math.floormod(tf.range(self.n_codes), n))
        picked = tf.gather(flat, idx)
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            first = tf.cast(tf.equal(ctx.replica_id_in_sync_group, 0), picked.dtype)
            picked = ctx.all_reduce(tf.distribute.ReduceOp.SUM, picked * first)
        return picked

    def _maybe_data_init(self, flat):
        """On the first training batch, codebook <- K random queries of the batch (N_k = 1, m_k = e_k).
        No tf.cond: a cross-replica all-reduce may not run inside one, so the draw is made every
        step and kept only on the first."""
        picked = self._random_queries(flat)
        fresh = self.initialized < 0.5
        self.codebook.assign(tf.where(fresh, picked, self.codebook))
        self.ema_sums.assign(tf.where(fresh, picked, self.ema_sums))
        self.ema_counts.assign(tf.where(fresh, tf.ones_like(self.ema_counts), self.ema_counts))
        self.initialized.assign(1.0)


class ArgmaxQuantizer(keras.layers.Layer):
    """Argmax autoencoder bottleneck (AMAE, sec. 3.2, Eq. 2).

        q     = relu(a) / (sum_k relu(a)_k + eps)     (divisive normalisation onto the K-simplex)
        q_hat = one_hot(argmax_k q)                    (the nearest one-hot vector)
        out   = q + [q_hat - q]                        (straight-through)
        L     = -log p(x | q_hat) + nu L_div,   L_div = K * || mean_{b,t} q - 1/K ||^2

    Variant (#1.6, `nonlinearity="softmax"`): q = softmax(a) with the entropy diversity loss
    L_div = log K - H(mean_{b,t} q) (= -H plus a constant, so it is >= 0).

    Args:
      n_codes: K; the encoder's output has K channels.
      nu: diversity loss scale (nu; the paper's value is lost; our default 0.1, with the K factor
        above, which is our normalisation: L_div is then 0 for uniform use and K - 1 for one code).
      nonlinearity: "relu" (divisive normalisation, the paper's default) or "softmax".
      epsilon: guards the normalisation when every relu output is 0 (then q = 0 and code 0).

    The batch mean is taken over all replicas under a distribution strategy.
    """

    def __init__(self, n_codes: int, nu: float = 0.1, nonlinearity: str = "relu", epsilon: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        if nonlinearity not in ("relu", "softmax"):
            raise ValueError(f"nonlinearity must be 'relu' or 'softmax', got {nonlinearity!r}")
        self.n_codes, self.nu, self.nonlinearity, self.epsilon = int(n_codes), float(nu), nonlinearity, float(epsilon)
        self.built = True

    def get_config(self):
        return {**super().get_config(), "n_codes": self.n_codes, "nu": self.nu, "nonlinearity": self.nonlinearity,
                "epsilon": self.epsilon}

    def simplex(self, a: tf.Tensor) -> tf.Tensor:
        """Encoder outputs `[..., K]` -> points on the simplex `[..., K]`."""
        if self.nonlinearity == "softmax":
            return tf.nn.softmax(a, axis=-1)
        r = tf.nn.relu(a)
        return r / (tf.reduce_sum(r, -1, keepdims=True) + self.epsilon)

    @property
    def statistics(self) -> list:
        """None: the argmax bottleneck normalises nothing by data statistics (see `VectorQuantizerEMA`)."""
        return []

    def lookup(self, codes: tf.Tensor) -> tf.Tensor:
        return tf.one_hot(codes, self.n_codes)

    def call(self, a: tf.Tensor, training=False) -> QuantizerOutput:
        """a: float32 `[B, T, K]` encoder outputs -> `QuantizerOutput`."""
        q = self.simplex(a)
        codes = tf.argmax(q, axis=-1, output_type=tf.int32)
        q_hat = tf.one_hot(codes, self.n_codes, dtype=q.dtype)
        flat_q = tf.reshape(q, [-1, self.n_codes])
        n_local = tf.cast(tf.shape(flat_q)[0], q.dtype)
        sum_q, counts, n = _replica_sum([tf.reduce_sum(flat_q, 0),
                                         tf.reduce_sum(tf.reshape(q_hat, [-1, self.n_codes]), 0), n_local])
        mean_q = sum_q / n
        if self.nonlinearity == "softmax":
            diversity = math.log(self.n_codes) + tf.reduce_sum(tf.math.xlogy(mean_q, mean_q))
        else:
            diversity = self.n_codes * tf.reduce_sum(tf.square(mean_q - 1.0 / self.n_codes))
        return QuantizerOutput(quantized=q + tf.stop_gradient(q_hat - q), codes=codes, loss=self.nu * diversity,
                               terms={"diversity": diversity}, perplexity=perplexity_from_counts(counts),
                               counts=counts)

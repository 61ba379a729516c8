"""The autoregressive WaveNet model: full forward, cached step, and compiled generation.

p(x) = prod_t p(x[t] | x[:t]) (paper eq. in sec. 1; van den Oord et al. 2016a). `logits[:, t]`
parameterises p(x[:, t] | x[:, :t]); the network reads the input shifted right by one step,
with `start_value` (mu-law silence, 128) standing before x[:, 0].
"""
from __future__ import annotations

import os
import sys
import time
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from tf_ada import ops
from tf_ada.configs import WaveNetConfig
from tf_ada.layers.wavenet import WaveNetStack
from tf_ada.models.outputs import FromConfig, ModelOutput, from_logits, nll_per_timestep  # noqa: F401  (re-exported)


# Models whose dilated product has at most this many multiply-adds per row are split into groups
# (see default_groups).
GROUP_MAX_MACS_PER_ROW = 2 ** 18


def default_groups(batch_size: int, macs_per_row: int, n_cores: Optional[int] = None, min_rows: int = 16) -> int:
    """How many side-by-side streams `WaveNet.generate` splits a batch into.

    Grouping pays only where each product is too small to split well across the cores: one group
    per core, each of at least `min_rows` rows and dividing the batch, when the model's dilated
    product (`macs_per_row`: residual x k * 2I multiply-adds per row; 2 L - 1 of a step's 2 L + 2
    products are the dilated and residual ones, the residual being smaller) is at most
    `GROUP_MAX_MACS_PER_ROW`; else one group. Measured on the 2-core development machine
    (BENCHMARKS.md): the paper local model (98,304 per row) ran 1.33x faster at batch 32 and
    1.27x at 64 in 2 groups, and gained nothing at batch 16 (8 rows per group); the paper large
    WaveNet (1,572,864 per row) ran 0.70x as fast at batch 32 in 2 groups."""
    if macs_per_row > GROUP_MAX_MACS_PER_ROW:
        return 1
    if n_cores is None:
        n_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    groups = max(1, min(n_cores, batch_size // min_rows))
    while batch_size % groups:
        groups -= 1
    return groups


class WaveNet(FromConfig, keras.Model):
    """Autoregressive WaveNet over integer symbols (mu-law audio, or codes).

    Args:
      config: a causal `WaveNetConfig` (e.g. `configs.large_wavenet("paper")`).

    Call:
      `logits = net(x, bias=None)`: x int32 `[B, T]`; bias float32 `[B, T, conditioning_channels]`
      for conditioned configs (the ADA local model); logits float32 `[B, T, output_channels]`.
    Training with `fit`: `net.compile(optimizer, loss=net.loss_fn)`; `net.fit(x=excerpts, y=excerpts)`.
    """

    def __init__(self, config: WaveNetConfig, **kwargs):
        kwargs.setdefault("name", config.name)
        super().__init__(**kwargs)
        if not config.causal:
            raise ValueError("WaveNet (the autoregressive model) needs a causal config")
        self.config = config
        self.stack = WaveNetStack(config, name="stack")
        self.start_value = ops.mu_law_silence(config.n_input_classes)
        self._generate_fns = {}

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    def call(self, x, bias=None, bias_hop: int = 1, training=None):
        """x int32 `[B, T]` -> logits `[B, T, output_channels]`; bias at 1 / bias_hop of the rate."""
        x = tf.cast(x, tf.int32)
        shifted = tf.concat([tf.fill([tf.shape(x)[0], 1], self.start_value), x[:, :-1]], axis=1)
        return self.stack(shifted, bias, bias_hop=bias_hop)

    # --- the model contract (tf_ada/models/outputs.py) ---

    hop = 1  # timesteps per code: a WaveNet has no codes, any length is valid

    def forward(self, x, training=False) -> ModelOutput:
        """x int32 `[B, T]` -> its `ModelOutput` (loss = mean NLL; no codes)."""
        return from_logits(x, self(x, training=training))

    @property
    def polyak_variables(self) -> list:
        """Variables averaged for evaluation (`train.polyak_variables`): the trainable weights."""
        return list(self.trainable_variables)

    @property
    def evaluation_statistics(self) -> list:
        """A WaveNet has no statistics that evaluation recomputes (see `ADA.calibrate`)."""
        return []

    def calibrate(self, batches) -> None:
        """Nothing to calibrate (see `ADA.calibrate`)."""

    def set_hyperparameters(self, **values) -> None:
        """A WaveNet has no hyperparameters that PBT changes during training; `values` must be empty."""
        if values:
            raise ValueError(f"{self.name}: no live hyperparameters {sorted(values)}")

    @staticmethod
    def loss_fn(y_true, logits):
        """Mean NLL in nats per timestep (a Keras loss: `compile(loss=WaveNet.loss_fn)`)."""
        return tf.reduce_mean(nll_per_timestep(tf.cast(y_true, tf.int32), logits))

    # --- cached generation ---

    @property
    def dilated_product_macs(self) -> int:
        """Multiply-adds per row of a block's dilated product, residual x k * 2I (`default_groups`)."""
        c = self.config
        return c.residual_channels * c.filter_length * c.gate_channels

    def init_state(self, batch_size: int, in_place: bool = False) -> dict:
        """State before the first step: zero ring buffers and step index 0. in_place: the ring
        buffers are `tf.Variable`s that each step updates in place (one row written per step)
        instead of tensors returned anew (which the plain graph copies whole on every step)."""
        cache = self.stack.init_cache(batch_size)
        if in_place:
            cache = [[tf.Variable(buf, trainable=False) for buf in block] for block in cache]
        return {"t": tf.constant(0, tf.int32), "cache": cache}

    def step(self, state: dict, x_prev: Optional[tf.Tensor], bias_t: Optional[tf.Tensor] = None):
        """Logits of the next timestep given the previous sample.

        Args:
          state: from `init_state` or the previous `step`.
          x_prev: int32 `[B]`, the sample at t - 1; None on the first step (the start value).
          bias_t: float32 `[B, conditioning_channels]` for conditioned configs.

        Returns:
          (logits_t float32 `[B, output_channels]`, new state).
        """
        if x_prev is None:
            batch = tf.shape(state["cache"][0][0])[1] if state["cache"] and state["cache"][0] else 1
            x_prev = tf.fill([batch], self.start_value)
        logits, cache = self.stack.step(tf.cast(x_prev, tf.int32), state["cache"], state["t"], bias_t)
        return logits, {"t": state["t"] + 1, "cache": cache}

    def _generate_fn(self, jit: bool, chunk_size: int, in_place: bool, groups: int = 1):
        """The compiled sampling loop: up to `chunk_size` steps per call, state in and out.

        The output buffer has the fixed size `chunk_size` and the trip count is a tensor, so one
        compilation serves every call (XLA would otherwise recompile for each new length). With
        in-place ring buffers (variables) the loop carries only the step index; the buffers are
        updated where they are and stay outside the loop state.

        groups > 1 (in place only): the batch is split into `groups` equal parts, each with its own
        ring buffers, whose steps are independent ops in one graph, so TensorFlow's inter-op
        threads run them side by side (one per core) instead of splitting every small matmul
        across the cores. The logits of all groups are joined before sampling, so the draws are
        those of the ungrouped loop up to float round-off in the logits (products with fewer rows
        may round differently; a near-tie can then flip one draw and the rest of that stream)."""
        if groups > 1 and not in_place:
            raise ValueError("grouped generation needs in-place ring buffers")
        key = (bool(jit), int(chunk_size), bool(in_place), int(groups))
        if key not in self._generate_fns:
            def run(state, x_prev, n_steps, temperature, seed, conditioning, conditioning_hop):
                out = tf.TensorArray(tf.int32, size=chunk_size, element_shape=x_prev.shape)
                buffers = state["cache"]

                def body(i, st, x, out):
                    bias = None
                    if conditioning is not None:
                        bias = tf.gather(conditioning, st["t"] // conditioning_hop, axis=1)
                    if groups > 1:
                        xs = tf.split(x, groups)
                        bs = tf.split(bias, groups) if bias is not None else [None] * groups
                        logits = tf.concat([self.step({"t": st["t"], "cache": buffers[g]}, xs[g], bs[g])[0]
                                            for g in range(groups)], axis=0)
                        st = {"t": st["t"] + 1}
                    else:
                        st = {"t": st["t"], "cache": buffers} if in_place else st
                        logits, st = self.step(st, x, bias)
                    x = ops.sample_logits(logits, temperature, seed + tf.stack([0, st["t"]]))
                    st = {"t": st["t"]} if in_place else st
                    return i + 1, st, x, out.write(i, x)

                carried = {"t": state["t"]} if in_place else state
                _, carried, x_prev, out = tf.while_loop(lambda i, *_: i < n_steps, body,
                                                        (tf.constant(0), carried, x_prev, out),
                                                        maximum_iterations=chunk_size)
                return carried, x_prev, tf.transpose(out.stack())

            self._generate_fns[key] = tf.function(run, jit_compile=jit)
        return self._generate_fns[key]

    def generate(self, n_samples: int, batch_size: int = 1, temperature: float = 1.0, seed: Optional[int] = None,
                 conditioning=None, conditioning_hop: int = 1, chunk_size: int = 4096, jit: Optional[bool] = None,
                 in_place: Optional[bool] = None, groups: Optional[int] = None,
                 verbose: Optional[bool] = None) -> tf.Tensor:
        """Ancestral sampling with per-layer caches; the loop runs in one compiled graph per chunk.

        Args:
          n_samples: timesteps to generate.
          batch_size: independent samples drawn in parallel.
          temperature: softmax temperature (> 0).
          seed: int; the same seed gives the same samples. None draws a random seed.
          conditioning: float32 `[B, n_frames, conditioning_channels]` biases (conditioned configs),
            frame f applying to steps [f * hop, (f + 1) * hop) (e.g. an ADA modulator's output at
            the code rate with hop h; no audio-rate copy is made).
          conditioning_hop: steps per conditioning frame.
          chunk_size: steps per compiled call; progress is printed between chunks.
          jit: compile the loop with XLA. Default: yes at batch 1, no above (TF's plain matmul is
            faster than XLA's for many-row products on CPU).
          in_place: ring buffers as variables updated in place (`init_state`). Default: without
            XLA (XLA already updates its buffers in place). Samples are the same either way.
          groups: split the batch into this many independent streams of steps run side by side
            (in place only; see `_generate_fn`). Default: `default_groups` in place without
            XLA, else 1. Samples are the same for every grouping (up to float round-off in the logits).
          verbose: print progress (rate, ETA) between chunks; default when n_samples > chunk_size.

        Returns:
          int32 `[batch_size, n_samples]`.
        """
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        if self.config.conditioning:
            if conditioning is None:
                raise ValueError(f"{self.config.name} is conditioned: pass conditioning")
            conditioning = tf.convert_to_tensor(conditioning, tf.float32)
            needed = -(-n_samples // conditioning_hop)
            if conditioning.shape[1] < needed:
                raise ValueError(f"conditioning has {conditioning.shape[1]} frames; {n_samples} samples at hop "
                                 f"{conditioning_hop} need {needed}")
            batch_size = conditioning.shape[0]
        jit = (batch_size == 1) if jit is None else jit
        verbose = n_samples > chunk_size if verbose is None else verbose
        seed = int(np.random.randint(2 ** 31 - 1)) if seed is None else int(seed)
        seed_t = tf.constant([seed, 0], tf.int32)
        in_place = (not jit) if in_place is None else bool(in_place)
        if groups is None:
            groups = default_groups(batch_size, self.dilated_product_macs) if in_place and not jit else 1
        if groups < 1 or batch_size % groups:
            raise ValueError(f"groups={groups} must be >= 1 and divide batch_size={batch_size}")
        fn = self._generate_fn(jit, chunk_size, in_place, groups)
        if groups > 1:
            state = {"t": tf.constant(0, tf.int32),
                     "cache": [self.init_state(batch_size // groups, True)["cache"] for _ in range(groups)]}
        else:
            state = self.init_state(batch_size, in_place)
        x_prev = tf.fill([batch_size], self.start_value)
        chunks, done, start = [], 0, time.monotonic()
        hop = tf.constant(conditioning_hop, tf.int32)
        while done < n_samples:
            n = min(chunk_size, n_samples - done)
            carried, x_prev, out = fn(state, x_prev, tf.constant(n), tf.constant(temperature, tf.float32), seed_t,
                                      conditioning, hop)
            state = {**carried, "cache": state["cache"]} if in_place else carried
            chunks.append(out[:, :n])
            done += n
            if verbose:
                rate = done / (time.monotonic() - start)
                print(f"generate: {done:,}/{n_samples:,} samples x {batch_size}  {rate:,.0f} steps/s  "
                      f"ETA {(n_samples - done) / rate:,.0f}s", file=sys.stderr, flush=True)
        return tf.concat(chunks, axis=1)

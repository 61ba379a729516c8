"""Autoregressive discrete autoencoders (ADAs; sec. 3, Figure 1): encoder -> quantiser -> modulator -> local model.

    q      = pool_h(encoder(x))            queries at the code rate (mean pooling at the output, sec. 3.3)
    out    = quantiser(q)                  VQ-VAE (Eq. 1) or AMAE (Eq. 2): straight-through q_hat, codes
    c      = modulator(out.quantized)      time-dependent biases for every dilated convolution of the
                                           local model, at the code rate; repeated h times (sec. 3.3)
    logits = local(x, c)                   p(x[t] | x[:t], codes)
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import keras
import tensorflow as tf

from tf_ada import ops
from tf_ada.configs import ADAConfig
from tf_ada.layers.quantizers import ArgmaxQuantizer, QuantizerOutput, VectorQuantizerEMA
from tf_ada.layers.wavenet import WaveNetStack
from tf_ada.models.outputs import FromConfig, ModelOutput, nll_per_timestep
from tf_ada.models.wavenet import WaveNet


class Encoder(keras.layers.Layer):
    """Non-causal WaveNet at the audio rate, then mean pooling by the hop (sec. 3.3, app. A).

    Call: x int32 `[B, T]` mu-law audio -> queries float32 `[B, T // hop, D]` (T divisible by hop).
    """

    def __init__(self, config, hop: int, **kwargs):
        super().__init__(**kwargs)
        self.config, self.hop = config, int(hop)
        self.stack = WaveNetStack(config, name="stack")

    def call(self, x):
        h = self.stack(x)  # [B, T, D]
        b, t = tf.shape(h)[0], tf.shape(h)[1]
        return tf.reduce_mean(tf.reshape(h, [b, t // self.hop, self.hop, self.config.output_channels]), axis=2)


class Modulator(keras.layers.Layer):
    """Non-causal WaveNet at the code rate: quantised queries `[B, T', D]` -> biases `[B, T', L * 2I]`
    (one per gate channel of each of the local model's L dilated convolutions; sec. 3.3)."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.stack = WaveNetStack(config, name="stack")

    def call(self, quantized):
        return self.stack(quantized)


@dataclasses.dataclass
class ADAOutput(ModelOutput):
    """An ADA's `ModelOutput`: logits `[B, T, 256]`, nll, nll_per_step `[B, T]`, loss = nll + the
    quantiser's weighted terms, and the quantiser's own output (codes, counts, each loss term)."""
    quantizer: QuantizerOutput

    @property
    def codes(self):
        return self.quantizer.codes

    @property
    def perplexity(self):
        return self.quantizer.perplexity

    def scalars(self) -> dict:
        """Every scalar term, named, for logs, TensorBoard and PBT fitness."""
        return {"loss": self.loss, "nll": self.nll, "perplexity": self.quantizer.perplexity,
                "codes_in_use": tf.reduce_sum(tf.cast(self.quantizer.counts > 0, tf.float32)),
                **{k: v for k, v in self.quantizer.terms.items()}}


class ADA(FromConfig, keras.Model):
    """An autoregressive discrete autoencoder.

    Args:
      config: an `ADAConfig` (e.g. `configs.table1_row("1.2", "paper").model`).

    `out = ada(x, training=...)` with x int32 `[B, T]` (T divisible by the hop) returns an
    `ADAOutput`; `ada.encode(x)` the codes `[B, T // hop]`; `ada.decode(codes)` audio `[B, T]`
    sampled with the local model's cached generation.
    """

    def __init__(self, config: ADAConfig, **kwargs):
        kwargs.setdefault("name", config.name)
        super().__init__(**kwargs)
        self.config = config
        c = config
        self.encoder = Encoder(c.encoder, c.hop, name="encoder")
        # the quantiser and its K-means statistics stay float32 under a mixed policy (issue 12)
        if c.quantizer == "vq":
            self.quantizer = VectorQuantizerEMA(c.n_codes, c.code_channels, beta=c.beta, gamma=c.gamma,
                                                data_init=c.data_init, restart_dead_codes=c.restart_dead_codes,
                                                query_norm=c.query_norm, name="quantizer", dtype="float32")
        else:
            self.quantizer = ArgmaxQuantizer(c.n_codes, nu=c.nu, name="quantizer",
                                             nonlinearity="softmax" if c.quantizer == "amae_softmax" else "relu",
                                             dtype="float32")
        self.modulator = Modulator(c.modulator, name="modulator")
        self.local = WaveNet(c.local, name="local_model")

    @property
    def polyak_variables(self) -> list:
        """Variables averaged for evaluation (see `train.polyak_variables`): the trainable weights
        and, for a VQ-VAE, the codebook (which learns by K-means, not by gradients)."""
        extra = [self.quantizer.codebook] if isinstance(self.quantizer, VectorQuantizerEMA) else []
        return list(self.trainable_variables) + extra

    @property
    def evaluation_statistics(self) -> list:
        """Variables that evaluation needs recomputed for the weights it evaluates (`calibrate`):
        a VQ-VAE's query-normalisation statistics; [] otherwise."""
        return list(self.quantizer.statistics)

    def calibrate(self, batches) -> None:
        """Sets `evaluation_statistics` from the current weights' queries on audio batches
        (int32 `[B, T]` each, training batches): the query statistics of the encoder as it is now."""
        if not self.evaluation_statistics:
            return
        d = self.config.code_channels
        queries = [tf.reshape(self.encoder(tf.cast(x, tf.int32)), [-1, d]) for x in batches]
        self.quantizer.calibrate(tf.concat(queries, 0), batch_queries=int(queries[0].shape[0]))

    # --- the model contract (tf_ada/models/outputs.py) ---

    @property
    def hop(self) -> int:
        """Audio timesteps per code (sec. 3.3)."""
        return self.config.hop

    def forward(self, x, training=False) -> ADAOutput:
        """x int32 `[B, T]` -> its `ADAOutput` (the same as calling the model)."""
        return self(x, training=training)

    def set_hyperparameters(self, **values) -> None:
        """Changes the quantiser's live hyperparameters (a VQ-VAE's beta and gamma, Eq. 1) without
        recompiling the training step; PBT's explore step calls it. An AMAE takes none."""
        if not values:
            return
        if not isinstance(self.quantizer, VectorQuantizerEMA):
            raise ValueError(f"{self.name}: the {self.config.quantizer} quantiser has no live hyperparameters")
        self.quantizer.set_hyperparameters(**values)

    def _check_length(self, x):
        t = x.shape[1]
        if t is not None and t % self.config.hop:
            raise ValueError(f"excerpt length {t} is not a multiple of the hop {self.config.hop}")

    def call(self, x, training=False) -> ADAOutput:
        x = tf.cast(x, tf.int32)
        self._check_length(x)
        q = self.encoder(x)
        out = self.quantizer(q, training=training)
        bias = self.modulator(out.quantized)
        logits = self.local(x, bias, bias_hop=self.config.hop)
        nll_steps = nll_per_timestep(x, logits)
        nll = tf.reduce_mean(nll_steps)
        return ADAOutput(logits=logits, nll=nll, nll_per_step=nll_steps, loss=nll + out.loss, quantizer=out)

    def encode(self, x) -> tf.Tensor:
        """Audio int32 `[B, T]` -> codes int32 `[B, T // hop]` (no EMA updates)."""
        x = tf.cast(x, tf.int32)
        self._check_length(x)
        return self.quantizer(self.encoder(x), training=False).codes

    def biases(self, codes) -> tf.Tensor:
        """Codes `[B, T']` -> the modulator's biases `[B, T', L * 2I]` at the code rate."""
        return self.modulator(self.quantizer.lookup(tf.cast(codes, tf.int32)))

    def decode(self, codes, seed: Optional[int] = None, temperature: float = 1.0, verbose=None) -> tf.Tensor:
        """Codes int32 `[B, T']` -> sampled audio int32 `[B, T' * hop]` (cached generation)."""
        codes = tf.convert_to_tensor(codes, tf.int32)
        n_samples = int(codes.shape[1]) * self.config.hop
        return self.local.generate(n_samples, temperature=temperature, seed=seed, conditioning=self.biases(codes),
                                   conditioning_hop=self.config.hop, verbose=verbose)


def reconstruct_audio(ada: ADA, audio, seed: int = 0, temperature: float = 1.0):
    """Float audio `[T]` -> (codes, reconstructed float audio `[T']`), T' = T rounded down to the hop."""
    x = ops.mu_law_encode(audio)
    t = (int(x.shape[0]) // ada.config.hop) * ada.config.hop
    codes = ada.encode(x[None, :t])
    out = ada.decode(codes, seed=seed, temperature=temperature)
    return codes[0], ops.mu_law_decode(out[0])

"""The one output contract of every trainable model (issue 14).

The Trainer, the evaluation protocols, the benchmarks, PBT's fitness and the exporters read a
model only through `model.forward(x, training) -> ModelOutput` (and the model's `hop`,
`polyak_variables`, `evaluation_statistics` with `calibrate`, and `set_hyperparameters`): a
WaveNet on audio or on codes (Table 1's #1.1, Table 3's priors), a first-level ADA (Table 1)
and a second-level ADA on codes (Table 2) alike, so no caller branches on the model's type.
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from tf_ada.configs import config_from_dict, config_to_dict


@dataclasses.dataclass
class ModelOutput:
    """What one forward pass of a trainable model gives.

    Attributes:
      logits: float32 `[B, T, C]`, p(x[t] | x[:t], ...) for the T targets.
      nll: scalar float32, mean NLL in nats per timestep.
      nll_per_step: float32 `[B, T]`.
      loss: scalar float32 that training minimises (the NLL plus any auxiliary terms).
    """
    logits: tf.Tensor
    nll: tf.Tensor
    nll_per_step: tf.Tensor
    loss: tf.Tensor

    @property
    def codes(self) -> tf.Tensor:
        """int32 `[B, T // hop]`; `[B, 0]` for a model without codes."""
        return tf.zeros([tf.shape(self.nll_per_step)[0], 0], tf.int32)

    def scalars(self) -> dict:
        """Every scalar term, named ("loss" and "nll" always), for logs, TensorBoard and PBT fitness."""
        return {"loss": self.loss, "nll": self.nll}


class FromConfig:
    """Keras (de)serialisation of a model built from one frozen config (`self.config`), for
    `keras.saving` and the exporters: the config is the model's whole description."""

    def get_config(self):
        return {"config": config_to_dict(self.config)}

    @classmethod
    def from_config(cls, cfg):
        return cls(config_from_dict(cfg["config"]))


def nll_per_timestep(x: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Negative log-likelihood in nats of each target: x int32 `[B, T]`, logits `[B, T, C]` -> `[B, T]`."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=x, logits=logits)


def from_logits(x: tf.Tensor, logits: tf.Tensor, extra_loss=0.0) -> ModelOutput:
    """The `ModelOutput` of logits for targets x int32 `[B, T]` (loss = mean NLL + extra_loss)."""
    nll_steps = nll_per_timestep(tf.cast(x, tf.int32), logits)
    nll = tf.reduce_mean(nll_steps)
    return ModelOutput(logits=logits, nll=nll, nll_per_step=nll_steps, loss=nll + extra_loss)

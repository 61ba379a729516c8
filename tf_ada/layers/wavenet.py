"""WaveNet layers (van den Oord et al. 2016a), used for every network of the paper (sec. 3.3, app. A).

One definition serves both the full-sequence forward (training, evaluation, encoders) and the
cached single-step update (generation): each layer has `call` and `step` sharing the same
weights and the same maths.

How the convolutions map onto matrix products. A dilated convolution with k taps at offsets
o_0 < ... < o_{k-1} (multiples of the dilation d) computes
    h[t] = sum_j x[t + o_j] @ W_j + b.
We compute all taps with ONE matrix product y = x @ [W_0 | ... | W_{k-1}] (`[B*T, R] x [R, k*G]`)
and then add time-shifted slices of y: h[t] = sum_j y_j[t + o_j] + b. Shifting the (narrower)
products instead of the inputs keeps one large, efficient matmul per layer and no im2col copy.
In the cached step, y_j for the past taps is kept in a ring buffer of length |o_j|, so a step
costs one vector-matrix product per layer and reads one buffered row per past tap.
Zero padding of the layer input is equivalent to zero rows of y (the bias is added afterwards),
and an all-zero initial ring buffer reproduces exactly that padding.
"""
from __future__ import annotations

from typing import Optional, Sequence

import keras
import tensorflow as tf

from tf_ada import ops
from tf_ada.configs import WaveNetConfig


def shift_time(y: tf.Tensor, offset: int) -> tf.Tensor:
    """z[:, t] = y[:, t + offset], zero where t + offset falls outside `[0, T)`. y: `[B, T, C]`."""
    if offset == 0:
        return y
    t = tf.shape(y)[1]
    n = tf.minimum(abs(offset), t)  # a shift of T or more leaves only padding
    if offset < 0:
        return tf.pad(y[:, : t - n], [[0, 0], [n, 0], [0, 0]])
    return tf.pad(y[:, n:], [[0, 0], [0, n], [0, 0]])


def tap_offsets(filter_length: int, dilation: int, causal: bool) -> list[int]:
    """Time offsets of the k taps: causal (-(k-1)d, ..., -d, 0) or centred (-(k-1)d/2, ..., (k-1)d/2)."""
    first = -(filter_length - 1) * dilation if causal else -(filter_length - 1) // 2 * dilation
    return [first + j * dilation for j in range(filter_length)]


def _cast(layer: keras.layers.Layer, value) -> tf.Tensor:
    """`value` (a weight or an activation) in the layer's compute dtype: float32 by default;
    bfloat16 for models built under a "mixed_bfloat16" policy (`train.build_model`), whose
    weights stay float32. Inside `call` Keras already casts the weights; the cached `step` path
    runs outside Keras' autocast scope, so both paths cast explicitly."""
    return tf.cast(value, layer.compute_dtype)


def _glorot(fan_in: int, fan_out: int):
    return keras.initializers.VarianceScaling(1.0, "fan_avg", "uniform")


class ResidualBlock(keras.layers.Layer):
    """One WaveNet residual block (app. A: "residual blocks, a multiplicative nonlinearity").

        h = dilated_conv(x) + c            (k taps, dilation d; c: optional time-dependent bias
                                            from the modulator, sec. 3.3)
        z = tanh(h[:, :, :I]) * sigmoid(h[:, :, I:])     ("inner block size" I)
        x_out = x + z @ W_res + b_res      (1x1 convolution back to the residual size R)

    The skip connection (a 1x1 convolution of z, summed over blocks) is applied by `WaveNetStack`
    to all blocks' z at once, which is the same sum computed as one matrix product.

    Args:
      residual_channels: R. inner_channels: I (the dilated convolution has 2I outputs).
      filter_length: k. dilation: d. causal: causal or centred taps.
      residual_output: False for the last block of a stack, whose residual output nothing reads
        (it has no W_res and returns x unchanged).
    """

    def __init__(self, residual_channels: int, inner_channels: int, filter_length: int, dilation: int,
                 causal: bool = True, residual_output: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.residual_channels = int(residual_channels)
        self.inner_channels = int(inner_channels)
        self.filter_length = int(filter_length)
        self.dilation = int(dilation)
        self.causal = bool(causal)
        self.residual_output = bool(residual_output)
        self.offsets = tap_offsets(self.filter_length, self.dilation, self.causal)
        g = 2 * self.inner_channels
        # all k taps side by side: [R, k * 2I]; tap j occupies columns [j * 2I, (j + 1) * 2I)
        self.dilated_kernel = self.add_weight(
            name="dilated_kernel", shape=(self.residual_channels, self.filter_length * g),
            initializer=keras.initializers.VarianceScaling(1.0 / self.filter_length, "fan_in", "uniform"))
        self.dilated_bias = self.add_weight(name="dilated_bias", shape=(g,), initializer="zeros")
        if self.residual_output:
            self.residual_kernel = self.add_weight(
                name="residual_kernel", shape=(self.inner_channels, self.residual_channels),
                initializer=keras.initializers.VarianceScaling(1.0, "fan_in", "uniform"))
            self.residual_bias = self.add_weight(name="residual_bias", shape=(self.residual_channels,),
                                                 initializer="zeros")
        self.built = True

    def get_config(self):
        return {**super().get_config(), "residual_channels": self.residual_channels,
                "inner_channels": self.inner_channels, "filter_length": self.filter_length,
                "dilation": self.dilation, "causal": self.causal, "residual_output": self.residual_output}

    def _gate(self, h):
        i = self.inner_channels
        return tf.tanh(h[..., :i]) * tf.sigmoid(h[..., i:])

    def _residual(self, x, z):
        if not self.residual_output:
            return x
        return x + tf.matmul(z, _cast(self, self.residual_kernel)) + _cast(self, self.residual_bias)

    def call(self, x: tf.Tensor, bias: Optional[tf.Tensor] = None):
        """Full-sequence forward.

        Args:
          x: float32 `[B, T, R]` residual stream.
          bias: optional float32 `[B, T, 2I]` time-dependent bias.

        Returns:
          (x_out `[B, T, R]`, z `[B, T, I]` gated activations for the skip connection).
        """
        g = 2 * self.inner_channels
        x = _cast(self, x)
        y = tf.matmul(x, _cast(self, self.dilated_kernel))  # [B, T, k * 2I]
        h = _cast(self, self.dilated_bias)
        for j, offset in enumerate(self.offsets):
            h = h + shift_time(y[..., j * g:(j + 1) * g], offset)
        if bias is not None:
            h = h + _cast(self, bias)
        z = self._gate(h)
        return self._residual(x, z), z

    # --- cached generation (causal blocks only) ---

    def init_cache(self, batch_size) -> list[tf.Tensor]:
        """Zero ring buffers, one per past tap j: `[|o_j|, B, 2I]` (time-major, so one row is one step)."""
        if not self.causal:
            raise ValueError("cached steps need a causal block")
        g = 2 * self.inner_channels
        return [tf.zeros([-o, batch_size, g], self.compute_dtype) for o in self.offsets[:-1]]

    def step(self, x_t: tf.Tensor, cache: Sequence[tf.Tensor], t: tf.Tensor, bias_t: Optional[tf.Tensor] = None):
        """One timestep with cached past products.

        Args:
          x_t: float32 `[B, R]` residual stream at step t.
          cache: ring buffers from `init_cache` / the previous step: tensors (returned updated)
            or `tf.Variable`s (updated in place and returned as they are).
          t: int32 scalar, the step index (0 for the first step after `init_cache`).
          bias_t: optional float32 `[B, 2I]`.

        Returns:
          (x_out_t `[B, R]`, z_t `[B, I]`, new cache).
        """
        g = 2 * self.inner_channels
        x_t = _cast(self, x_t)
        y = tf.matmul(x_t, _cast(self, self.dilated_kernel))  # [B, k * 2I]
        h = y[:, (self.filter_length - 1) * g:] + _cast(self, self.dilated_bias)
        new_cache = []
        for j, buf in enumerate(cache):
            slot = tf.math.floormod(t, tf.shape(buf)[0])  # written |o_j| steps ago
            h = h + tf.gather(buf, slot)  # read before the write below (same slot)
            row = y[None, :, j * g:(j + 1) * g]
            if isinstance(buf, tf.Variable):  # in place: one row written, nothing copied
                buf.scatter_nd_update([[slot]], row)
                new_cache.append(buf)
            else:  # a new tensor (XLA makes it in place; the plain graph copies the buffer)
                new_cache.append(tf.tensor_scatter_nd_update(buf, [[slot]], row))
        if bias_t is not None:
            h = h + _cast(self, bias_t)
        z = self._gate(h)
        return self._residual(x_t, z), z, new_cache


class WaveNetStack(keras.layers.Layer):
    """Input layer, residual blocks built from the config's dilation loop, skip sum and output head.

        e = embed(x)                                   (one-hot input: learned embedding == 1x1 conv
                                                        of one-hot vectors; continuous: scalar x W)
        e, z_l = block_l(e, c_l)   for l = 1..L        (c_l: layer l's slice of the conditioning)
        s = [z_1, ..., z_L] @ W_skip + b_skip          (== sum_l of per-block 1x1 skip convolutions)
        out = relu(relu(s) @ W_1 + b_1) @ W_2 + b_2    (output head; logits for audio models)

    Args:
      config: a `WaveNetConfig`.
    """

    def __init__(self, config: WaveNetConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        c = config
        if c.input_kind == "one_hot":
            self.embedding = self.add_weight(name="embedding", shape=(c.n_input_classes, c.residual_channels),
                                             initializer=keras.initializers.RandomUniform(-1.0, 1.0))
        elif c.input_kind == "vector":
            self.input_kernel = self.add_weight(name="input_kernel", shape=(c.n_input_classes, c.residual_channels),
                                                initializer=keras.initializers.VarianceScaling(1.0, "fan_in",
                                                                                               "uniform"))
            self.input_bias = self.add_weight(name="input_bias", shape=(c.residual_channels,), initializer="zeros")
        else:
            self.input_kernel = self.add_weight(name="input_kernel", shape=(1, c.residual_channels),
                                                initializer=keras.initializers.RandomUniform(-1.0, 1.0))
            self.input_bias = self.add_weight(name="input_bias", shape=(c.residual_channels,), initializer="zeros")
        self.blocks = [ResidualBlock(c.residual_channels, c.inner_channels, c.filter_length, d, c.causal,
                                     residual_output=i < c.n_layers - 1, name=f"block_{i:02d}_d{d}")
                       for i, d in enumerate(c.dilations)]
        fan = keras.initializers.VarianceScaling(1.0, "fan_in", "uniform")
        self.skip_kernel = self.add_weight(name="skip_kernel", shape=(c.n_layers * c.inner_channels, c.skip_channels),
                                           initializer=fan)
        self.skip_bias = self.add_weight(name="skip_bias", shape=(c.skip_channels,), initializer="zeros")
        self.head_kernel_1 = self.add_weight(name="head_kernel_1", shape=(c.skip_channels, c.skip_channels),
                                             initializer=fan)
        self.head_bias_1 = self.add_weight(name="head_bias_1", shape=(c.skip_channels,), initializer="zeros")
        # the last product stays float32 under a mixed policy (autocast off): its outputs are the
        # logits of the softmax, the quantiser's queries or the next network's biases (issue 12)
        self.head_kernel_2 = self.add_weight(name="head_kernel_2", shape=(c.skip_channels, c.output_channels),
                                             initializer=fan, autocast=False)
        self.head_bias_2 = self.add_weight(name="head_bias_2", shape=(c.output_channels,), initializer="zeros",
                                           autocast=False)
        self.built = True

    def get_config(self):
        from tf_ada.configs import config_to_dict
        return {**super().get_config(), "config": config_to_dict(self.config)}

    @classmethod
    def from_config(cls, cfg):
        from tf_ada.configs import config_from_dict
        cfg = dict(cfg)
        return cls(config_from_dict(cfg.pop("config")), **cfg)

    def embed(self, x: tf.Tensor) -> tf.Tensor:
        """int32 symbols `[...]` (or float vectors `[..., n_input_classes]`) -> `[..., R]` in the
        compute dtype (float32 unless built under a mixed policy)."""
        if self.config.input_kind == "one_hot":
            return _cast(self, tf.gather(self.embedding, x))
        if self.config.input_kind == "vector":
            value = x
        else:
            value = ops.mu_law_decode(x, self.config.n_input_classes)[..., None]
        return tf.matmul(_cast(self, value), _cast(self, self.input_kernel)) + _cast(self, self.input_bias)

    def _split_bias(self, bias, n):
        if bias is None:
            return [None] * n
        g = self.config.gate_channels
        return [bias[..., i * g:(i + 1) * g] for i in range(n)]

    def head(self, zs: list[tf.Tensor]) -> tf.Tensor:
        """Skip sum and output head; the output is float32 whatever the compute dtype (logits
        go to the softmax, queries to the quantiser, biases to the next network): the skip and
        first head products run in the compute dtype, the last one in float32 on float32 weights."""
        s = tf.matmul(tf.concat(zs, -1), _cast(self, self.skip_kernel)) + _cast(self, self.skip_bias)
        h = tf.nn.relu(tf.matmul(tf.nn.relu(s), _cast(self, self.head_kernel_1)) + _cast(self, self.head_bias_1))
        return tf.matmul(tf.cast(h, tf.float32), self.head_kernel_2) + self.head_bias_2

    def call(self, x: tf.Tensor, bias: Optional[tf.Tensor] = None, bias_hop: int = 1) -> tf.Tensor:
        """Full forward.

        Args:
          x: int32 `[B, T]` input symbols (already shifted by the caller for causal prediction),
            or float32 `[B, T, n_input_classes]` for "vector" input.
          bias: float32 `[B, T // bias_hop, conditioning_channels]` when the config is
            conditioned, else None; frame f applies to steps [f * bias_hop, (f + 1) * bias_hop).
          bias_hop: upsampling factor of the bias by repetition (the ADA's hop; sec. 3.3). Each
            layer repeats only its own slice, so no audio-rate copy of all biases is made.

        Returns:
          float32 `[B, T, output_channels]`.
        """
        return self.call_embedded(self.embed(x), bias, bias_hop)

    def call_embedded(self, h: tf.Tensor, bias: Optional[tf.Tensor] = None, bias_hop: int = 1) -> tf.Tensor:
        """The stack after the input layer: float32 `[B, T, R]` -> `[B, T, output_channels]`
        (differentiable in its input, which is how tests measure the receptive field)."""
        self._check_bias(bias)
        h = _cast(self, h)
        zs = []
        for block, b in zip(self.blocks, self._split_bias(bias, len(self.blocks))):
            if b is not None and bias_hop != 1:
                b = tf.repeat(b, bias_hop, axis=1)
            h, z = block(h, b)
            zs.append(z)
        return self.head(zs)

    def _check_bias(self, bias):
        if self.config.conditioning and bias is None:
            raise ValueError(f"{self.config.name} is conditioned: "
                             f"pass bias [B, T, {self.config.conditioning_channels}]")
        if not self.config.conditioning and bias is not None:
            raise ValueError(f"{self.config.name} takes no conditioning bias")

    def init_cache(self, batch_size) -> list[list[tf.Tensor]]:
        return [block.init_cache(batch_size) for block in self.blocks]

    def step(self, x_t: tf.Tensor, cache, t: tf.Tensor, bias_t: Optional[tf.Tensor] = None):
        """One cached timestep: int32 `[B]` symbols -> (float32 `[B, output_channels]`, new cache)."""
        self._check_bias(bias_t)
        h = self.embed(x_t)
        zs, new_cache = [], []
        for block, c, b in zip(self.blocks, cache, self._split_bias(bias_t, len(self.blocks))):
            h, z, c = block.step(h, c, t, b)
            zs.append(z)
            new_cache.append(c)
        return self.head(zs), new_cache

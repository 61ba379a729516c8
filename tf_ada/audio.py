"""Decoding any recording through tensorflow-io: wav, flac, ogg, mp3 -> mono 16 kHz float32.

Every failure raises `AudioError`, whose message names the file and the reason, so that
`tf-ada prepare` can skip the file, report it and go on.
"""
from __future__ import annotations

import os
import re
import warnings

import numpy as np
import tensorflow as tf

from tf_ada.ops import SAMPLE_RATE

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import tensorflow_io as tfio  # noqa: E402  (loads the custom audio ops)

# tfio's resampler retraces per input length and TensorFlow warns each time; the warning is noise here
tf.get_logger().setLevel("ERROR")


class AudioError(Exception):
    """A recording that cannot be used. `path` is the file, `reason` a short explanation."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


_INT_SCALE = {tf.int16: 32768.0, tf.int32: 2147483648.0, tf.uint8: 128.0}


def _to_float(samples: tf.Tensor) -> tf.Tensor:
    if samples.dtype == tf.uint8:  # 8-bit wav is unsigned around 128
        return (tf.cast(samples, tf.float32) - 128.0) / 128.0
    if samples.dtype in _INT_SCALE:
        return tf.cast(samples, tf.float32) / _INT_SCALE[samples.dtype]
    return tf.cast(samples, tf.float32)


def load_audio(path: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Reads a recording, mixes it to mono and resamples it.

    Args:
      path: a .wav, .flac, .ogg or .mp3 file (16-bit, 32-bit integer or float samples).
      sample_rate: output rate in Hz (16 kHz in the paper).

    Returns:
      float32 numpy array `[n_samples]`, nominally in [-1, 1].

    Raises:
      AudioError: missing, empty, unsupported or undecodable files, or files without samples.
    """
    path = str(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in AUDIO_EXTENSIONS:
        raise AudioError(path, f"unsupported extension {ext or '(none)'}; expected one of {', '.join(AUDIO_EXTENSIONS)}")
    if not os.path.exists(path):
        raise AudioError(path, "file does not exist")
    if os.path.getsize(path) == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    try:
        io_tensor = tfio.audio.AudioIOTensor(path)
        rate_in = int(io_tensor.rate.numpy())
        samples = io_tensor.to_tensor()
    except (tf.errors.OpError, ValueError, RuntimeError) as e:
        msg = getattr(e, "message", str(e)).strip().splitlines()[-1]
        msg = re.sub(r"\{\{.*?\}\}|\[Op:[^\]]*\]", "", msg).strip()[:200]  # drop TF's op names
        raise AudioError(path, f"cannot decode {ext[1:]} data ({msg})") from None
    if samples.shape.rank != 2 or samples.shape[0] == 0:
        raise AudioError(path, "decoded to no samples")
    if rate_in <= 0:
        raise AudioError(path, f"invalid sample rate {rate_in}")
    audio = tf.reduce_mean(_to_float(samples), axis=1, keepdims=True)  # [T, 1], mono mix
    if rate_in != sample_rate:
        audio = tfio.audio.resample(audio, rate_in=rate_in, rate_out=sample_rate)
    audio = audio[:, 0].numpy()
    if not np.all(np.isfinite(audio)):
        raise AudioError(path, "decoded samples contain NaN or inf")
    return audio


def save_wav(path: str, audio, sample_rate: int = SAMPLE_RATE) -> None:
    """Writes float audio `[n_samples]` in [-1, 1] as a 16-bit PCM mono wav file."""
    audio = np.clip(np.asarray(audio, np.float32).reshape(-1, 1), -1.0, 1.0)
    data = tf.audio.encode_wav(audio, sample_rate)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tf.io.write_file(str(path), data)

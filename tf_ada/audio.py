"""Decoding any recording: wav, flac, ogg, mp3 -> mono 16 kHz float32.

WAV files are parsed here (their RIFF header checked, then 8/16/24/32-bit integer or 32/64-bit
float PCM, plain or WAVE_FORMAT_EXTENSIBLE); flac, ogg and mp3 are decoded by tensorflow-io; every
format is resampled by tensorflow-io. Every failure raises `AudioError`, whose message names the
file and the reason, so that `tf-ada prepare` can skip the file, report it and go on.
"""
from __future__ import annotations

import contextlib
import os
import re
import struct
import warnings

import numpy as np
import tensorflow as tf

from tf_ada.ops import SAMPLE_RATE

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import tensorflow_io as tfio  # noqa: E402  (loads the custom audio ops)



@contextlib.contextmanager
def _quiet_retracing():
    """tfio's resampler retraces per input length and TensorFlow warns each time; that warning is
    noise here. Silenced only around the resampling call (no logging change at import time)."""
    logger = tf.get_logger()
    previous = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(previous)


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


WAVE_PCM, WAVE_FLOAT, WAVE_EXTENSIBLE = 1, 3, 0xFFFE


def read_wav(path: str) -> tuple[np.ndarray, int]:
    """Parses a RIFF/WAVE file without tensorflow-io (whose reader aborts the process on a bad
    header, and reads 32-bit integer PCM as floats).

    Args:
      path: a .wav file.

    Returns:
      (float32 `[n_frames, channels]` at full scale +-1 (float data as stored, so it may exceed
      1), sample rate in Hz).

    Raises:
      AudioError: not RIFF/WAVE, a chunk or the data chunk larger than the file, no fmt or data
        chunk, an unsupported encoding, zero channels or rate.
    """
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise AudioError(path, "cannot decode wav data (not a RIFF/WAVE file)")
    fmt, data, pos = None, None, 12
    while pos + 8 <= len(raw):
        chunk_id, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        body = pos + 8
        if size > len(raw) - body:
            what = "data chunk" if chunk_id == b"data" else f"chunk {chunk_id!r}"
            raise AudioError(path, f"cannot decode wav data (the {what} claims {size} bytes but only "
                                   f"{len(raw) - body} follow: a corrupt or truncated header)")
        if chunk_id == b"fmt ":
            if size < 16:
                raise AudioError(path, f"cannot decode wav data (fmt chunk of {size} bytes)")
            tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", raw[body:body + 16])
            if tag == WAVE_EXTENSIBLE and size >= 26:
                tag = struct.unpack("<H", raw[body + 24:body + 26])[0]  # first two bytes of the sub-format GUID
            fmt = (tag, channels, rate, block_align, bits)
        elif chunk_id == b"data":
            data = raw[body:body + size]
            break
        pos = body + size + (size & 1)  # chunks are padded to an even size
    if fmt is None or data is None:
        raise AudioError(path, f"cannot decode wav data (no {'fmt' if fmt is None else 'data'} chunk)")
    tag, channels, rate, block_align, bits = fmt
    if channels == 0 or rate == 0:
        raise AudioError(path, f"cannot decode wav data ({channels} channels at {rate} Hz)")
    width = bits // 8
    if tag == WAVE_PCM and bits in (8, 16, 24, 32):
        frames = len(data) // (width * channels)
        buf = np.frombuffer(data, np.uint8, frames * width * channels)
        if bits == 8:  # 8-bit wav is unsigned around 128
            x = (buf.astype(np.float32) - 128.0) / 128.0
        elif bits == 24:
            b = buf.reshape(-1, 3).astype(np.int32)
            x = ((b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24) >> 8).astype(np.float32) / 2.0 ** 23
        else:
            x = np.frombuffer(buf.tobytes(), f"<i{width}").astype(np.float64) / 2.0 ** (bits - 1)
    elif tag == WAVE_FLOAT and bits in (32, 64):
        frames = len(data) // (width * channels)
        x = np.frombuffer(data[:frames * width * channels], f"<f{width}")
    else:
        raise AudioError(path, f"unsupported wav encoding (format tag {tag:#x}, {bits} bits); "
                               f"expected 8/16/24/32-bit integer or 32/64-bit float PCM")
    return np.asarray(x, np.float32).reshape(-1, channels), int(rate)


def load_audio(path: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Reads a recording, mixes it to mono and resamples it.

    Args:
      path: a .wav (8/16/24/32-bit integer or 32/64-bit float samples), .flac, .ogg or .mp3 file.
      sample_rate: output rate in Hz (16 kHz in the paper).

    Returns:
      float32 numpy array `[n_samples]`, nominally in [-1, 1].

    Raises:
      AudioError: missing, empty, unsupported or undecodable files, or files without samples.
    """
    path = str(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in AUDIO_EXTENSIONS:
        raise AudioError(path, f"unsupported extension {ext or '(none)'}; "
                               f"expected one of {', '.join(AUDIO_EXTENSIONS)}")
    if not os.path.exists(path):
        raise AudioError(path, "file does not exist")
    if os.path.getsize(path) == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    try:
        if ext == ".wav":
            wav, rate_in = read_wav(path)
            samples = tf.constant(wav)
        else:
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
        with _quiet_retracing():
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

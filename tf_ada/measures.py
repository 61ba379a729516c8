"""Audio measures for reconstructions (pure numpy): spectral flatness and chroma correlation.

Two numbers say whether a reconstruction sounds like its original (issue 13):

* `spectral_flatness`: is it noise? Per frame, the geometric mean of the power spectrum over
  its arithmetic mean (Wiener entropy; 1 for a flat spectrum, near 0 for a few partials), the
  median over the frames that have energy. Piano music scores far below white noise. Which
  spectrum matters for the numbers: 8-bit mu-law piano scores 0.0005 on the power spectrum and
  0.11 on the magnitude spectrum; white noise 0.56 and 0.85 (`power` chooses).
* `chroma_correlation`: does it follow the music? Frame-wise Pearson correlation of the 12-bin
  chroma (power per pitch class) of the reconstruction with the original's, averaged over the
  frames where the original has energy. A copy of the original scores 1, white noise about 0.

Definitions and constants (16 kHz audio):

  flatness: Hann frames of `FLATNESS_FRAME` = 2048 samples (128 ms), hop `FLATNESS_HOP` = 512
    (32 ms); the bins from the first above DC to Nyquist (8 Hz .. 8 kHz); power = |X|^2
    (`power=2`). A single periodogram of white noise has exponentially distributed bin powers,
    whose geometric over arithmetic mean is exp(-Euler's gamma) = 0.561: that is white noise's
    flatness here. With `power=1` (magnitude spectrum, Rayleigh-distributed) white noise gives
    2 exp(-gamma / 2) / sqrt(pi) = 0.846 (the scale of the flatness numbers quoted in issue 13 and
    docs/table1_cpu.md); a pure chord gives near 0 under both.
  chroma: Hann frames of `CHROMA_FRAME` = 4096 samples (256 ms: 3.9 Hz bins, finer than a
    semitone above C2), hop `CHROMA_HOP` = 2048 (128 ms); bins from `CHROMA_FMIN` = 65.4 Hz (C2)
    to `CHROMA_FMAX` = 4186 Hz (C8), each given to its nearest equal-tempered pitch class (A4 =
    440 Hz; class 0 is C); a class's value is the *mean* power of its bins, so that white noise
    has a flat expected chroma (a sum would favour the classes with more, wider bins). Power,
    not magnitude or log: additive noise then adds the same expected amount to every class,
    which Pearson's correlation ignores, so a reconstruction with the right notes under a noise
    floor still scores high, and noise alone scores about 0.
  frames with energy: a frame's mean square (window-compensated) is at least `MIN_RMS`^2
    (-60 dBFS) and within `ENERGY_DB` = 40 dB of the loudest frame of the same signal.
  Pearson per frame: across the 12 classes; a frame whose reconstruction chroma is constant
    (a silent reconstruction) counts 0.

Shapes: audio float `[T]` in [-1, 1] (mono, 16 kHz); per-frame values `[n_frames]`, chroma
`[n_frames, 12]`. Audio shorter than one frame is zero-padded to one frame.
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
FLATNESS_FRAME, FLATNESS_HOP = 2048, 512
CHROMA_FRAME, CHROMA_HOP = 4096, 2048
CHROMA_FMIN, CHROMA_FMAX = 65.4, 4186.0
ENERGY_DB = -40.0
MIN_RMS = 1e-3
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def frames(audio, frame_size: int, hop: int) -> np.ndarray:
    """Float64 `[n_frames, frame_size]`: frame i covers samples [i * hop, i * hop + frame_size);
    n_frames = 1 + (T - frame_size) // hop (the tail shorter than a frame is dropped)."""
    x = np.asarray(audio, np.float64).reshape(-1)
    if x.size < frame_size:
        x = np.pad(x, (0, frame_size - x.size))
    n = 1 + (x.size - frame_size) // hop
    idx = np.arange(n)[:, None] * hop + np.arange(frame_size)[None, :]
    return x[idx]


def _window(frame_size: int) -> np.ndarray:
    return np.hanning(frame_size + 1)[:-1]  # periodic Hann


def power_spectrum(audio, frame_size: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """(|STFT|^2 of Hann frames `[n_frames, frame_size // 2 + 1]`, each frame's window-compensated
    mean square `[n_frames]`)."""
    w = _window(frame_size)
    fr = frames(audio, frame_size, hop) * w
    mean_square = np.mean(fr ** 2, axis=1) / np.mean(w ** 2)
    return np.abs(np.fft.rfft(fr, axis=1)) ** 2, mean_square


def has_energy(mean_square, energy_db: float = ENERGY_DB, min_rms: float = MIN_RMS) -> np.ndarray:
    """Bool `[n_frames]`: frames at least `min_rms`^2 in mean square and within `energy_db` (< 0)
    of the loudest frame."""
    ms = np.asarray(mean_square, np.float64)
    if ms.size == 0:
        return np.zeros(0, bool)
    return (ms >= min_rms ** 2) & (ms >= ms.max() * 10.0 ** (energy_db / 10.0))


def flatness_per_frame(audio, frame_size: int = FLATNESS_FRAME, hop: int = FLATNESS_HOP,
                       power: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(spectral flatness of every frame `[n_frames]`, its mean square `[n_frames]`).

    flatness = exp(mean_k log S_k) / mean_k S_k with S_k = |X_k|^power over the bins above DC;
    in [0, 1]."""
    spec, mean_square = power_spectrum(audio, frame_size, hop)
    s = spec[:, 1:] ** (power / 2.0)
    arithmetic = np.mean(s, axis=1)
    geometric = np.exp(np.mean(np.log(np.maximum(s, 1e-300)), axis=1))
    return np.where(arithmetic > 0, geometric / np.maximum(arithmetic, 1e-300), 0.0), mean_square


def spectral_flatness(audio, frame_size: int = FLATNESS_FRAME, hop: int = FLATNESS_HOP, power: float = 2.0,
                      energy_db: float = ENERGY_DB, min_rms: float = MIN_RMS) -> float:
    """Median spectral flatness over the frames with energy (see the module docstring).

    Args:
      audio: float `[T]`, 16 kHz, in [-1, 1].
      frame_size, hop: Hann frames (default 2048 / 512 samples).
      power: 2 for the power spectrum (white noise: 0.561), 1 for the magnitude spectrum (0.846).
      energy_db, min_rms: which frames count (`has_energy`).

    Returns:
      the median over frames with energy; NaN when no frame has energy (silence).
    """
    values, mean_square = flatness_per_frame(audio, frame_size, hop, power)
    keep = has_energy(mean_square, energy_db, min_rms)
    return float(np.median(values[keep])) if keep.any() else float("nan")


def pitch_classes(frame_size: int = CHROMA_FRAME, sample_rate: int = SAMPLE_RATE, fmin: float = CHROMA_FMIN,
                  fmax: float = CHROMA_FMAX) -> np.ndarray:
    """Int `[frame_size // 2 + 1]`: each rfft bin's nearest pitch class (0 = C, 9 = A), -1 outside
    [fmin, fmax]."""
    freqs = np.fft.rfftfreq(frame_size, 1.0 / sample_rate)
    out = np.full(freqs.shape, -1, np.int64)
    inside = (freqs >= fmin) & (freqs <= fmax)
    midi = 69.0 + 12.0 * np.log2(freqs[inside] / 440.0)
    out[inside] = np.mod(np.rint(midi).astype(np.int64), 12)
    return out


def chroma(audio, frame_size: int = CHROMA_FRAME, hop: int = CHROMA_HOP, sample_rate: int = SAMPLE_RATE,
           fmin: float = CHROMA_FMIN, fmax: float = CHROMA_FMAX) -> tuple[np.ndarray, np.ndarray]:
    """(12-bin chroma `[n_frames, 12]`: the mean power of each pitch class's bins, its frames' mean
    square `[n_frames]`)."""
    spec, mean_square = power_spectrum(audio, frame_size, hop)
    classes = pitch_classes(frame_size, sample_rate, fmin, fmax)
    onehot = (classes[:, None] == np.arange(12)[None, :]).astype(np.float64)  # [bins, 12]
    return spec @ onehot / onehot.sum(axis=0), mean_square


def frame_correlation(a, b) -> np.ndarray:
    """Pearson correlation across the last axis of `[n, 12]` arrays, per row `[n]`; 0 where
    either row is constant."""
    a = np.asarray(a, np.float64) - np.mean(a, axis=-1, keepdims=True)
    b = np.asarray(b, np.float64) - np.mean(b, axis=-1, keepdims=True)
    norm = np.sqrt(np.sum(a ** 2, axis=-1) * np.sum(b ** 2, axis=-1))
    return np.where(norm > 0, np.sum(a * b, axis=-1) / np.where(norm > 0, norm, 1.0), 0.0)


def chroma_correlation(original, reconstruction, frame_size: int = CHROMA_FRAME, hop: int = CHROMA_HOP,
                       sample_rate: int = SAMPLE_RATE, energy_db: float = ENERGY_DB,
                       min_rms: float = MIN_RMS) -> float:
    """Frame-wise chroma correlation of `reconstruction` with `original` (module docstring).

    Both are cut to the shorter length; frames are aligned (same frame size and hop).

    Args:
      original, reconstruction: float `[T]`, 16 kHz, in [-1, 1].
      frame_size, hop: Hann frames (default 4096 / 2048 samples).
      energy_db, min_rms: which of the original's frames count (`has_energy`).

    Returns:
      the mean over the original's frames with energy of the Pearson correlation across the 12
      pitch classes; NaN when the original has no frame with energy. Copy: 1; white noise: ~0.
    """
    a, b = np.asarray(original).reshape(-1), np.asarray(reconstruction).reshape(-1)
    n = min(a.size, b.size)
    ca, mean_square = chroma(a[:n], frame_size, hop, sample_rate)
    cb, _ = chroma(b[:n], frame_size, hop, sample_rate)
    keep = has_energy(mean_square, energy_db, min_rms)
    if not keep.any():
        return float("nan")
    return float(np.mean(frame_correlation(ca[keep], cb[keep])))


def summarize(original, reconstruction) -> dict:
    """{flatness_original, flatness_reconstruction, chroma_correlation} of one pair (defaults)."""
    return {"flatness_original": spectral_flatness(original),
            "flatness_reconstruction": spectral_flatness(reconstruction),
            "chroma_correlation": chroma_correlation(original, reconstruction)}

"""The Salamander Grand Piano as a SoundFont, built once from the npm sample packages.

npm `@audio-samples/piano-velocity{1..16}` 1.0.5: Salamander Grand Piano V3 (Yamaha C5, Alexander
Holm, CC-BY 3.0), 30 notes A0..C8 every three semitones per velocity layer, 48 kHz stereo OGG.
Each sample is decoded with tensorflow-io, mixed to mono at 24 kHz, high-passed below half its
fundamental (2nd-order Butterworth; removes rumble that builds up in chords), trimmed to 12 s
with a 0.5 s fade, and mapped to its three keys and its velocity band.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import re
from typing import Sequence

import numpy as np

from tf_ada.corpus.fetch import cache_dir, fetch_npm
from tf_ada.corpus.soundfont import Zone, write_sf2

VERSION = "1.0.5"
SF_RATE = 24000
TRIM_SECONDS = 12.0
FADE_SECONDS = 0.5
ALL_LAYERS = tuple(range(1, 17))
ATTRIBUTION = "Salamander Grand Piano V3 by Alexander Holm (CC-BY 3.0), npm @audio-samples/piano-velocity* 1.0.5"
_NOTE = re.compile(r"^([A-G])(#?)(\d)v(\d+)\.ogg$")
_SEMITONE = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def note_to_midi(filename: str) -> int:
    """'D#3v8.ogg' -> 51 (MIDI key number; A0 = 21, C4 = 60)."""
    m = _NOTE.match(os.path.basename(filename))
    if not m:
        raise ValueError(f"{filename}: not a Salamander sample name like 'D#3v8.ogg'")
    letter, sharp, octave, _ = m.groups()
    return 12 * (int(octave) + 1) + _SEMITONE[letter] + (1 if sharp else 0)


def velocity_bands(n_layers: int) -> list[tuple[int, int]]:
    """MIDI velocity range of each of n layers (ascending), covering 0..127 without gaps."""
    edges = [round(128 * i / n_layers) for i in range(n_layers + 1)]
    return [(edges[i], edges[i + 1] - 1) for i in range(n_layers)]


def key_ranges(roots: Sequence[int]) -> dict:
    """Key range of each sampled root: the keys nearest to it (ties to the lower root)."""
    roots = sorted(roots)
    out = {}
    for i, r in enumerate(roots):
        lo = 0 if i == 0 else (roots[i - 1] + r) // 2 + 1
        hi = 127 if i == len(roots) - 1 else (r + roots[i + 1]) // 2
        out[r] = (lo, hi)
    return out


def condition_sample(audio: np.ndarray, root_key: int, rate: int = SF_RATE) -> np.ndarray:
    """High-pass below half the fundamental, trim, fade; float [n] -> int16 [n]."""
    from scipy import signal
    f0 = 440.0 * 2 ** ((root_key - 69) / 12)
    sos = signal.butter(2, 0.5 * f0, btype="highpass", fs=rate, output="sos")
    x = signal.sosfilt(sos, audio.astype(np.float64))
    x = x[: int(TRIM_SECONDS * rate)]
    n_fade = min(int(FADE_SECONDS * rate), x.size)
    x[-n_fade:] *= 0.5 * (1 + np.cos(np.linspace(0, np.pi, n_fade)))
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)


def _load_sample(args):
    path, root = args
    from tf_ada.audio import load_audio
    return condition_sample(load_audio(path, SF_RATE), root)


def build_soundfont(layers: Sequence[int] = ALL_LAYERS, jobs: int = 2, log=print) -> str:
    """Builds (once; cached) the piano SoundFont from the given velocity layers; returns its path."""
    layers = tuple(sorted(set(layers)))
    key = json.dumps([VERSION, layers, SF_RATE, TRIM_SECONDS, FADE_SECONDS, 1])
    tag = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = os.path.join(cache_dir("soundfonts"), f"salamander-{len(layers)}layers-{tag}.sf2")
    if os.path.exists(path):
        return path
    tasks = []
    for v in layers:
        folder = os.path.join(fetch_npm(f"@audio-samples/piano-velocity{v}", VERSION), "audio")
        for f in sorted(os.listdir(folder)):
            if f.endswith(".ogg"):
                tasks.append((v, note_to_midi(f), os.path.join(folder, f)))
    log(f"soundfont: conditioning {len(tasks)} samples from {len(layers)} velocity layer(s) ...")
    # spawn, not fork: the workers run TensorFlow ops, which a forked TF process must not do
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        samples = list(pool.map(_load_sample, [(p, r) for _, r, p in tasks], chunksize=8))
    bands = dict(zip(layers, velocity_bands(len(layers))))
    keys = key_ranges({r for _, r, _ in tasks})
    zones = [Zone(samples=s, sample_rate=SF_RATE, root_key=r, key_lo=keys[r][0], key_hi=keys[r][1],
                  vel_lo=bands[v][0], vel_hi=bands[v][1], name=f"k{r}v{v}")
             for (v, r, _), s in zip(tasks, samples)]
    write_sf2(path, zones, name="Salamander Grand Piano (tf-ada)", copyright_=ATTRIBUTION)
    log(f"soundfont: wrote {path} ({os.path.getsize(path) / 2**20:.1f} MiB)")
    return path

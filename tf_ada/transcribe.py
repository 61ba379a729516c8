"""Audio -> notes with Basic Pitch's bundled model, MIDI -> notes, and note-level F1 (issue 16, item 5).

The musicality measures (`tf_ada.fidelity.note_measures`) need notes from generated audio. We use
the model that ships inside the `basic-pitch` package (Bittner et al. 2022, "A lightweight
instrument-agnostic model for polyphonic note transcription and multipitch estimation", ICASSP;
Apache-2.0): its weights are a file of the installed package, read at run time from the package's
own folder; nothing is downloaded.

Why the TFLite file: basic-pitch 0.4.0 declares tensorflow<2.15.1, so it is installed without its
dependencies (`pip install --no-deps basic-pitch==0.4.0`); we never import it (its `__init__`
probes for coremltools/onnxruntime/tflite-runtime), only locate its folder with
`importlib.util.find_spec`. Of its bundled formats, the SavedModel fails to load under our
TensorFlow 2.16 (`tf.saved_model.load`: "'_UserObject' object has no attribute 'add_slot'", its
optimizer slots), ONNX and CoreML need other runtimes, and `nmp.tflite` runs in TensorFlow's own
`tf.lite.Interpreter` (outputs equal the SavedModel's, run through TF1's loader, to 1.3e-5).

Pipeline (constants below; the model's are Basic Pitch's `constants.py`):
  1. resample the 16 kHz audio to the model's 22,050 Hz (`resample`: exact band-limited
     resampling by zero-padding the spectrum, one FFT per clip);
  2. as Basic Pitch's `run_inference`: prepend `OVERLAP_FRAMES` / 2 * `MODEL_HOP` = 3840 zeros,
     cut windows of `WINDOW_SAMPLES` = 43,844 samples (2 s) every 43,844 - 30 * 256 = 36,164
     samples, run the model on each, drop 15 of its 172 frames at each end, and concatenate.
     Frame j kept from window w lies at (w * 36164 + j * 256) / 22050 s of the clip: we compute
     that time exactly (Basic Pitch's `model_frames_to_time` approximates it with a fitted
     constant);
  3. note creation (`notes_from_activations`, Basic Pitch's `output_to_notes_polyphonic`
     re-implemented in numpy, with its defaults): onsets are the model's onset activation, or
     where larger, the rise of the note activation over 1 and 2 frames (rescaled to the onset
     maximum); local maxima in time at or above `ONSET_THRESHOLD` = 0.5 start notes (latest
     first); a note lasts until the note activation stays below `FRAME_THRESHOLD` = 0.3 for
     `ENERGY_TOLERANCE` = 11 frames (128 ms) and is kept if longer than `MIN_NOTE_FRAMES` = 11
     frames (128 ms, Basic Pitch's 127.7 ms default); its activation is then cleared at its
     pitch and the two neighbouring semitones. Then the "melodia trick": while any remaining
     note activation exceeds 0.3, the largest one seeds a note grown forwards and backwards by
     the same rule (kept if longer than 11 frames). Pitch bends are not estimated.
  4. Notes: float `[n_notes, 3]` of (onset s, offset s, MIDI pitch 21..108), sorted by onset.

`note_f1`: the onset-only note metric of mir_eval's `transcription.precision_recall_f1_overlap`
with `offset_ratio=None`: a one-to-one matching of estimated to reference notes of the same
MIDI pitch with onsets within `ONSET_TOLERANCE` = 50 ms; on a line a greedy two-pointer matching
in onset order is a maximum matching, so no bipartite solver is needed.

Caveats: Basic Pitch is instrument-agnostic, trained on MAESTRO (piano), GuitarSet, iKala,
MedleyDB and Slakh; offsets of decaying piano notes are weakly defined (the measures that use
durations, pitch-class histograms and polyphony, inherit that); validation numbers are in
docs/objective_measures.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
from typing import Optional

import numpy as np

SAMPLE_RATE = 16000
MODEL_SAMPLE_RATE = 22050
MODEL_HOP = 256
WINDOW_SAMPLES = 43844  # 2 s * 22050 - 256
FRAMES_PER_WINDOW = 172
OVERLAP_FRAMES = 30
LOWEST_PITCH, N_PITCHES = 21, 88  # A0..C8

ONSET_THRESHOLD = 0.5
FRAME_THRESHOLD = 0.3
MIN_NOTE_FRAMES = 11
ENERGY_TOLERANCE = 11
ONSET_TOLERANCE = 0.05

PACKAGE = "basic_pitch"
MODEL_FILE = os.path.join("saved_models", "icassp_2022", "nmp.tflite")
INSTALL_HINT = "pip install --no-deps basic-pitch==0.4.0"


class TranscriberUnavailable(RuntimeError):
    """The bundled model cannot be found (basic-pitch is not installed)."""


def model_path() -> str:
    """Path of Basic Pitch's bundled `nmp.tflite` inside the installed package (not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TranscriberUnavailable(f"the transcriber's model ships in basic-pitch: {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, MODEL_FILE)
        if os.path.exists(path):
            return path
    raise TranscriberUnavailable(f"{PACKAGE} is installed but has no {MODEL_FILE}: {INSTALL_HINT}")


def available() -> bool:
    """Whether the bundled model can be found."""
    try:
        model_path()
        return True
    except TranscriberUnavailable:
        return False


# --- signal ---------------------------------------------------------------------------------------

def resample(audio, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling of float `[T]` to `[round(T * rate_out / rate_in)]` by zero-padding
    (or truncating) the spectrum (integer rates in Hz). The clip is zero-padded by at least 1/8 of
    its length (at least 1024 samples), to a length n whose image m = n * rate_out / rate_in is
    whole (so the time scale is exact), so that its end does not wrap around onto its start."""
    x = np.asarray(audio, np.float64).reshape(-1)
    if rate_in == rate_out or x.size == 0:
        return x.astype(np.float32)
    step = rate_in // math.gcd(rate_in, rate_out)  # n a multiple of it: m / n is exactly rate_out / rate_in
    n = -(-(x.size + max(1024, x.size // 8)) // step) * step
    m = n * rate_out // rate_in
    spectrum = np.fft.rfft(x, n)
    out = np.zeros(m // 2 + 1, np.complex128)
    k = min(spectrum.size, out.size)
    out[:k] = spectrum[:k]
    if n % 2 == 0 and k == n // 2 + 1 and m > n:
        out[k - 1] *= 0.5  # the input's Nyquist bin becomes an ordinary bin: split between +/- f
    y = np.fft.irfft(out, m) * (m / n)
    return y[:int(round(x.size * rate_out / rate_in))].astype(np.float32)


def frame_times(n_samples_model: int) -> np.ndarray:
    """Times (s) of the kept frames, float `[n_frames]`, for a clip of `n_samples_model` samples at
    22,050 Hz (pipeline step 2): frame j of window w at (w * hop_windows + j * MODEL_HOP) / 22050,
    frames at or past the clip's end dropped."""
    hop_windows = WINDOW_SAMPLES - OVERLAP_FRAMES * MODEL_HOP
    kept = FRAMES_PER_WINDOW - OVERLAP_FRAMES
    n_windows = max(1, -(-(n_samples_model + OVERLAP_FRAMES * MODEL_HOP // 2) // hop_windows))
    samples = (np.arange(n_windows)[:, None] * hop_windows + np.arange(kept)[None, :] * MODEL_HOP).reshape(-1)
    return samples[samples < max(n_samples_model, 1)] / MODEL_SAMPLE_RATE


# --- note creation --------------------------------------------------------------------------------

def inferred_onsets(onset, note, n_diff: int = 2) -> np.ndarray:
    """max(onset, rise of `note` over 1..n_diff frames rescaled to onset's maximum), `[n, 88]`."""
    note = np.asarray(note, np.float64)
    padded = np.concatenate([np.zeros((n_diff, note.shape[1])), note])
    rise = np.min([padded[n_diff:] - padded[n_diff - k:padded.shape[0] - k] for k in range(1, n_diff + 1)], axis=0)
    rise = np.maximum(rise, 0.0)
    rise[:n_diff] = 0.0
    if rise.max() > 0:
        rise = np.max(onset) * rise / rise.max()
    return np.maximum(onset, rise)


def _extend(energy, start: int, pitch: int, step: int, threshold: float, tolerance: int, clear: bool) -> int:
    """Walk from `start` in direction `step` until `energy` at `pitch` stays below `threshold` for
    `tolerance` frames; returns the last frame (exclusive end when stepping forwards) above it.
    With `clear`, zero the visited frames at pitch and its neighbours as it goes (melodia)."""
    n = energy.shape[0]
    i, k = start + step, 0
    while (i < n - 1 if step > 0 else i > 0) and k < tolerance:
        k = k + 1 if energy[i, pitch] < threshold else 0
        if clear:
            energy[i, max(pitch - 1, 0):pitch + 2] = 0.0
        i += step
    return i - k if step > 0 else i + k


def notes_from_activations(note, onset, times, onset_threshold: float = ONSET_THRESHOLD,
                           frame_threshold: float = FRAME_THRESHOLD, min_note_frames: int = MIN_NOTE_FRAMES,
                           energy_tolerance: int = ENERGY_TOLERANCE, infer_onsets: bool = True,
                           melodia: bool = True) -> np.ndarray:
    """Basic Pitch's note creation (module docstring, step 3) in numpy.

    Args:
      note, onset: the model's activations, float `[n_frames, 88]` (column p is MIDI pitch 21 + p).
      times: each frame's time in s, `[n_frames]`.
      onset_threshold, frame_threshold, min_note_frames, energy_tolerance: the thresholds.
      infer_onsets, melodia: Basic Pitch's two options (both on by default there).

    Returns:
      float `[n_notes, 3]`: (onset s, offset s, MIDI pitch), sorted by onset then pitch.
    """
    note = np.asarray(note, np.float64)
    onset = np.asarray(onset, np.float64)
    n = note.shape[0]
    if n < 3:
        return np.zeros((0, 3))
    if infer_onsets:
        onset = inferred_onsets(onset, note)
    peaks = np.zeros_like(onset)
    is_peak = (onset[1:-1] > onset[:-2]) & (onset[1:-1] > onset[2:])
    peaks[1:-1][is_peak] = onset[1:-1][is_peak]
    t_idx, p_idx = np.nonzero(peaks >= onset_threshold)
    energy = note.copy()
    events = []
    for start, pitch in zip(t_idx[::-1], p_idx[::-1]):  # latest first, as Basic Pitch
        if start >= n - 1:
            continue
        end = _extend(energy, start, pitch, +1, frame_threshold, energy_tolerance, clear=False)
        if end - start <= min_note_frames:
            continue
        energy[start:end, max(pitch - 1, 0):pitch + 2] = 0.0
        events.append((start, end, pitch))
    while melodia and energy.max() > frame_threshold:
        mid, pitch = np.unravel_index(np.argmax(energy), energy.shape)
        energy[mid, pitch] = 0.0
        end = _extend(energy, mid, pitch, +1, frame_threshold, energy_tolerance, clear=True) - 1
        start = _extend(energy, mid, pitch, -1, frame_threshold, energy_tolerance, clear=True) + 1
        if end - start > min_note_frames:
            events.append((start, end, pitch))
    if not events:
        return np.zeros((0, 3))
    ev = np.array(events, np.int64)
    times = np.asarray(times, np.float64)
    out = np.stack([times[ev[:, 0]], times[np.minimum(ev[:, 1], n - 1)], ev[:, 2] + LOWEST_PITCH], axis=1)
    return out[np.lexsort((out[:, 2], out[:, 0]))]


class Transcriber:
    """Basic Pitch's bundled TFLite model with our numpy note creation.

    `Transcriber()(audio)` -> notes `[n_notes, 3]`; `activations(audio)` -> {note, onset, contour,
    times}. Raises `TranscriberUnavailable` if basic-pitch is not installed.
    """

    def __init__(self, path: Optional[str] = None):
        import tensorflow as tf  # the interpreter is TensorFlow's own; imported only when used
        self.path = path or model_path()
        self._interpreter = tf.lite.Interpreter(model_path=self.path)
        self._runner = self._interpreter.get_signature_runner()

    def activations(self, audio, sample_rate: int = SAMPLE_RATE) -> dict:
        """{"note", "onset": float `[n_frames, 88]`, "contour": `[n_frames, 264]`, "times": `[n_frames]`}
        of float audio `[T]` at `sample_rate` (pipeline steps 1-2)."""
        x = resample(audio, sample_rate, MODEL_SAMPLE_RATE)
        half = OVERLAP_FRAMES * MODEL_HOP // 2
        padded = np.concatenate([np.zeros(half, np.float32), x])
        hop_windows = WINDOW_SAMPLES - OVERLAP_FRAMES * MODEL_HOP
        times = frame_times(x.size)
        n_windows = -(-times.size // (FRAMES_PER_WINDOW - OVERLAP_FRAMES))
        outputs = {"note": [], "onset": [], "contour": []}
        for w in range(n_windows):
            window = padded[w * hop_windows:w * hop_windows + WINDOW_SAMPLES]
            window = np.pad(window, (0, WINDOW_SAMPLES - window.size))[None, :, None].astype(np.float32)
            result = self._runner(input_2=window)
            for key in outputs:
                outputs[key].append(np.asarray(result[key])[0, OVERLAP_FRAMES // 2:-(OVERLAP_FRAMES // 2)])
        out = {k: np.concatenate(v)[:times.size] for k, v in outputs.items()}
        out["times"] = times
        return out

    def __call__(self, audio, sample_rate: int = SAMPLE_RATE, **thresholds) -> np.ndarray:
        """Notes `[n_notes, 3]` (onset s, offset s, MIDI pitch) of float audio `[T]`; `thresholds`
        are passed to `notes_from_activations`."""
        act = self.activations(audio, sample_rate)
        return notes_from_activations(act["note"], act["onset"], act["times"], **thresholds)


# --- reference notes and note F1 ------------------------------------------------------------------

def midi_notes(path: str) -> np.ndarray:
    """Notes of a MIDI file, float `[n_notes, 3]` (onset s, offset s, pitch), sorted by onset; all
    tracks and channels, tempo changes applied (mido); the sustain pedal is ignored (onsets are
    what `note_f1` scores). A note-on without a note-off ends at the file's end."""
    import mido  # the corpus extra; only needed for reference MIDI
    t, active, notes = 0.0, {}, []
    for msg in mido.MidiFile(path):
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            active.setdefault((msg.channel, msg.note), []).append(t)
        elif msg.type in ("note_off", "note_on"):
            starts = active.get((msg.channel, msg.note))
            if starts:
                notes.append((starts.pop(0), t, msg.note))
    notes += [(s, t, key[1]) for key, starts in active.items() for s in starts]
    out = np.array(notes, np.float64).reshape(-1, 3)
    return out[np.lexsort((out[:, 2], out[:, 0]))]


def match_onsets(reference, estimate, tolerance: float = ONSET_TOLERANCE) -> np.ndarray:
    """One-to-one matches of notes with the same (rounded) pitch and onsets within `tolerance` s,
    int `[n_matches, 2]` of (reference index, estimate index). Per pitch, both onset lists are
    walked in order and a pair is matched as soon as it is within tolerance, which on a line
    gives a maximum matching."""
    ref, est = np.asarray(reference, np.float64).reshape(-1, 3), np.asarray(estimate, np.float64).reshape(-1, 3)
    pairs = []
    for pitch in np.intersect1d(np.rint(ref[:, 2]), np.rint(est[:, 2])):
        ri = np.flatnonzero(np.rint(ref[:, 2]) == pitch)
        ei = np.flatnonzero(np.rint(est[:, 2]) == pitch)
        ri, ei = ri[np.argsort(ref[ri, 0], kind="stable")], ei[np.argsort(est[ei, 0], kind="stable")]
        i = j = 0
        while i < ri.size and j < ei.size:
            d = est[ei[j], 0] - ref[ri[i], 0]
            if abs(d) <= tolerance + 1e-9:
                pairs.append((ri[i], ei[j]))
                i, j = i + 1, j + 1
            elif d < 0:
                j += 1
            else:
                i += 1
    return np.array(pairs, np.int64).reshape(-1, 2)


def note_f1(reference, estimate, tolerance: float = ONSET_TOLERANCE) -> dict:
    """Onset-only note precision, recall and F1 (mir_eval's, offsets ignored) of `estimate`
    against `reference` (both `[n, 3]`), with the count of matches and the median onset error
    (estimate minus reference, s) of the matches."""
    ref, est = np.asarray(reference).reshape(-1, 3), np.asarray(estimate).reshape(-1, 3)
    pairs = match_onsets(ref, est, tolerance)
    m = len(pairs)
    precision = m / len(est) if len(est) else 0.0
    recall = m / len(ref) if len(ref) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    error = float(np.median(est[pairs[:, 1], 0] - ref[pairs[:, 0], 0])) if m else float("nan")
    return {"precision": precision, "recall": recall, "f1": f1, "n_matched": m, "n_reference": len(ref),
            "n_estimate": len(est), "median_onset_error": error}


# --- validation on a rendered corpus ----------------------------------------------------------------

def find_render_midi(wav: str, renders: str) -> Optional[str]:
    """The MIDI that a corpus recording was rendered from: `tf-ada corpus build` keeps `KEY.wav`
    and `KEY.wav.mid` in its render cache and links `KEY.wav` into `OUT/wav`, so the MIDI is the
    `.mid` beside the cached render that is the same file as `wav` (None if none is)."""
    for name in sorted(os.listdir(renders)):
        path = os.path.join(renders, name)
        if name.endswith(".wav") and os.path.exists(path + ".mid") and os.path.samefile(path, wav):
            return path + ".mid"
    return None


def main(argv=None) -> None:
    """`python -m tf_ada.transcribe validate DATA [--renders DIR]`: note F1 of the transcription of
    every held-out recording of a prepared corpus whose MIDI is in the render cache."""
    parser = argparse.ArgumentParser(prog="python -m tf_ada.transcribe")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="note F1 on held-out corpus recordings with known MIDI")
    v.add_argument("data", help="prepared data folder (manifest.json with each file's source)")
    v.add_argument("--renders", default=os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                                                     "tf-ada", "renders"))
    v.add_argument("--split", default="eval")
    v.add_argument("--seconds", type=float, default=None, help="transcribe only the first S seconds")
    v.add_argument("--out", default=None, help="write the per-recording results as JSON")
    args = parser.parse_args(argv)

    from tf_ada.audio import load_audio
    with open(os.path.join(args.data, "manifest.json")) as f:
        files = json.load(f)["files"]
    transcriber, rows = Transcriber(), []
    for name, entry in sorted(files.items()):
        if entry.get("split") != args.split:
            continue
        midi = find_render_midi(entry["source"], args.renders)
        if midi is None:
            print(f"{name}: no MIDI in {args.renders}, skipped")
            continue
        audio = load_audio(entry["source"])
        seconds = audio.size / SAMPLE_RATE if args.seconds is None else min(args.seconds, audio.size / SAMPLE_RATE)
        reference = midi_notes(midi)
        reference = reference[reference[:, 0] < seconds - ONSET_TOLERANCE]
        estimate = transcriber(audio[:int(seconds * SAMPLE_RATE)])
        estimate = estimate[estimate[:, 0] < seconds - ONSET_TOLERANCE]
        row = {"recording": name, "piece": entry.get("piece"), "seconds": seconds, **note_f1(reference, estimate)}
        rows.append(row)
        print(f"{name}: F1 {row['f1']:.3f} P {row['precision']:.3f} R {row['recall']:.3f} "
              f"({row['n_matched']}/{row['n_reference']} ref, {row['n_estimate']} est, "
              f"median onset error {1000 * row['median_onset_error']:+.1f} ms)", flush=True)
    matched = sum(r["n_matched"] for r in rows)
    p = matched / max(sum(r["n_estimate"] for r in rows), 1)
    r = matched / max(sum(r["n_reference"] for r in rows), 1)
    f1s = np.array([row["f1"] for row in rows])
    summary = {"pooled_precision": p, "pooled_recall": r, "pooled_f1": 2 * p * r / max(p + r, 1e-12),
               "mean_f1": float(f1s.mean()) if f1s.size else float("nan"),
               "se_mean_f1": float(f1s.std(ddof=1) / np.sqrt(f1s.size)) if f1s.size > 1 else float("nan"),
               "n_recordings": len(rows)}
    print(json.dumps(summary, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"summary": summary, "recordings": rows}, f, indent=1)


if __name__ == "__main__":
    main()

"""Transcription (tf_ada/transcribe.py): note creation, note F1 and MIDI reading on hand-made
inputs; the bundled model only where basic-pitch is installed."""
import numpy as np
import pytest

from tf_ada import transcribe as tr

FPS = tr.MODEL_SAMPLE_RATE / tr.MODEL_HOP  # 86.13 frames per second


def _activations(n_frames, notes, level=0.9, onset_level=0.8):
    """note and onset activations `[n_frames, 88]` with each (start frame, end frame, pitch) held
    at `level` and an onset spike at its start."""
    note = np.zeros((n_frames, tr.N_PITCHES))
    onset = np.zeros((n_frames, tr.N_PITCHES))
    for start, end, pitch in notes:
        note[start:end, pitch - tr.LOWEST_PITCH] = level
        onset[start, pitch - tr.LOWEST_PITCH] = onset_level
    return note, onset


# --- note F1 ------------------------------------------------------------------------------------

def test_note_f1_by_hand():
    ref = np.array([[0.00, 0.5, 60], [0.50, 1.0, 62], [1.00, 1.5, 64], [1.00, 1.5, 67]])
    est = np.array([[0.03, 0.4, 60],    # match (30 ms late)
                    [0.58, 1.0, 62],    # 80 ms late: no match
                    [0.96, 1.2, 64],    # match (40 ms early)
                    [1.00, 1.5, 66],    # wrong pitch
                    [1.01, 1.5, 64]])   # second estimate of the same note: unmatched
    out = tr.note_f1(ref, est)
    assert out["n_matched"] == 2
    assert out["precision"] == pytest.approx(2 / 5) and out["recall"] == pytest.approx(2 / 4)
    assert out["f1"] == pytest.approx(2 * 0.4 * 0.5 / 0.9)
    assert out["median_onset_error"] == pytest.approx(-0.005)
    assert tr.note_f1(ref, ref)["f1"] == 1.0
    assert tr.note_f1(ref, np.zeros((0, 3)))["f1"] == 0.0


def test_matching_is_maximum_where_greedy_nearest_would_not_be():
    # reference onsets 0.00 and 0.09, estimates 0.045 and 0.10 (all pitch 60): nearest-first would
    # give 0.09 <-> 0.045 (45 ms) and leave 0.00 without a partner; the maximum matching pairs both
    ref = np.array([[0.00, 1, 60], [0.09, 1, 60]])
    est = np.array([[0.045, 1, 60], [0.10, 1, 60]])
    assert tr.note_f1(ref, est)["n_matched"] == 2


# --- note creation ------------------------------------------------------------------------------

def test_notes_from_activations_recovers_clean_notes():
    truth = [(10, 60, 60), (10, 60, 64), (80, 140, 67), (100, 120, 72)]
    note, onset = _activations(200, truth)
    times = np.arange(200) / FPS
    notes = tr.notes_from_activations(note, onset, times)
    assert notes.shape == (4, 3)
    got = sorted((round(on * FPS), p) for on, _, p in notes)
    assert got == sorted((s, p) for s, _, p in truth)
    # offsets: the first frame below threshold after the note (an exclusive end, as Basic Pitch)
    by_pitch = {int(p): (on, off) for on, off, p in notes}
    assert by_pitch[67][1] == pytest.approx(times[140])


def test_short_notes_and_weak_onsets_are_dropped():
    note, onset = _activations(200, [(10, 18, 60)])  # 8 frames: shorter than 11
    times = np.arange(200) / FPS
    assert len(tr.notes_from_activations(note, onset, times)) == 0
    # a sub-threshold onset on a long note: the melodia pass still finds the note
    note, onset = _activations(200, [(20, 80, 62)], onset_level=0.2)
    out = tr.notes_from_activations(note, onset, times, infer_onsets=False)
    assert len(out) == 1 and out[0, 2] == 62
    assert len(tr.notes_from_activations(note, onset, times, infer_onsets=False, melodia=False)) == 0


def test_inferred_onsets_mark_a_rise_of_the_note_activation():
    note, onset = _activations(50, [(20, 40, 60)], onset_level=0.0)
    onset[5, 0] = 0.7  # the onset maximum elsewhere sets the scale
    inferred = tr.inferred_onsets(onset, note)
    assert inferred[20, 60 - tr.LOWEST_PITCH] == pytest.approx(0.7)
    assert inferred[:, 60 - tr.LOWEST_PITCH].argmax() == 20


# --- signal -------------------------------------------------------------------------------------

def test_resample_keeps_a_sine_and_the_length():
    t = np.arange(16000) / 16000
    y = tr.resample(np.sin(2 * np.pi * 441.0 * t), 16000, tr.MODEL_SAMPLE_RATE)
    assert y.size == tr.MODEL_SAMPLE_RATE
    u = np.arange(y.size) / tr.MODEL_SAMPLE_RATE
    middle = slice(2000, y.size - 2000)  # away from the clip's abrupt edges
    np.testing.assert_allclose(y[middle], np.sin(2 * np.pi * 441.0 * u)[middle], atol=2e-3)


def test_frame_times_follow_the_windows():
    hop_windows = tr.WINDOW_SAMPLES - tr.OVERLAP_FRAMES * tr.MODEL_HOP
    times = tr.frame_times(3 * hop_windows)
    kept = tr.FRAMES_PER_WINDOW - tr.OVERLAP_FRAMES
    assert times[0] == 0.0
    assert times[kept] == pytest.approx(hop_windows / tr.MODEL_SAMPLE_RATE)  # window 1's first frame
    assert np.all(np.diff(times) > 0) and times[-1] < 3 * hop_windows / tr.MODEL_SAMPLE_RATE


# --- MIDI ---------------------------------------------------------------------------------------

def test_midi_notes_reads_a_written_file(tmp_path):
    mido = pytest.importorskip("mido")
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))  # 120 bpm: 480 ticks = 0.5 s
    track.append(mido.Message("note_on", note=60, velocity=80, time=0))
    track.append(mido.Message("note_on", note=64, velocity=80, time=240))
    track.append(mido.Message("note_off", note=60, velocity=0, time=240))
    track.append(mido.Message("note_on", note=64, velocity=0, time=480))  # note-on at velocity 0 ends
    path = str(tmp_path / "x.mid")
    mid.save(path)
    np.testing.assert_allclose(tr.midi_notes(path), [[0.0, 0.5, 60], [0.25, 1.0, 64]], atol=1e-9)


# --- the bundled model (only where basic-pitch is installed) -------------------------------------

needs_model = pytest.mark.skipif(not tr.available(), reason=f"basic-pitch not installed ({tr.INSTALL_HINT})")


@needs_model
def test_bundled_model_transcribes_a_synthetic_chord():
    sr = tr.SAMPLE_RATE
    t = np.arange(int(1.5 * sr)) / sr
    audio = np.zeros(3 * sr)
    for pitch in (60, 64, 67):  # C major triad from 0.5 s, decaying harmonic tones
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        tone = sum(0.5 ** k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 5)) * np.exp(-2.0 * t)
        audio[sr // 2:sr // 2 + t.size] += 0.2 * tone
    transcriber = tr.Transcriber()
    act = transcriber.activations(audio)
    assert act["note"].shape == (act["times"].size, tr.N_PITCHES) and act["contour"].shape[1] == 3 * tr.N_PITCHES
    notes = transcriber(audio)
    found = {int(p) for on, _, p in notes if abs(on - 0.5) < 0.05}
    assert {60, 64, 67} <= found

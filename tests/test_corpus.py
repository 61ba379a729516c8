import hashlib
import os
import shutil

import numpy as np
import pytest

from tf_ada.audio import load_audio
from tf_ada.corpus import build, piano, soundfont

mido = pytest.importorskip("mido")
needs_synth = pytest.mark.skipif(not (shutil.which("fluidsynth") and shutil.which("sox")),
                                 reason="fluidsynth and sox are installed by `make test` (as root)")


def sine_zone(freq, root, rate=24000, seconds=3.0, **kw):
    t = np.arange(int(rate * seconds)) / rate
    x = (0.5 * np.sin(2 * np.pi * freq * t) * np.exp(-t)).astype(np.float64)
    kw = {"key_lo": 0, "key_hi": 127, **kw}
    return soundfont.Zone(samples=np.round(x * 32767).astype(np.int16), sample_rate=rate, root_key=root, **kw)


def write_midi(path, notes, program=None, drums=False):
    """notes: (key, velocity, start_beats, length_beats) on channel 0 at 120 bpm."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    events = []
    if program is not None:
        events.append((0, mido.Message("program_change", program=program, channel=0)))
    for key, vel, start, length in notes:
        events.append((int(start * 480), mido.Message("note_on", note=key, velocity=vel, channel=0)))
        events.append((int((start + length) * 480), mido.Message("note_off", note=key, velocity=0, channel=0)))
        if drums:
            events.append((int(start * 480), mido.Message("note_on", note=36, velocity=100, channel=9)))
            events.append((int((start + 0.1) * 480), mido.Message("note_off", note=36, velocity=0, channel=9)))
    now = 0
    for tick, msg in sorted(events, key=lambda e: e[0]):
        track.append(msg.copy(time=tick - now))
        now = tick
    mid.save(path)
    return path


def dominant_hz(x, rate=16000):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.argmax(spectrum) * rate / x.size


def test_salamander_names_bands_and_key_ranges():
    assert piano.note_to_midi("A0v1.ogg") == 21 and piano.note_to_midi("C4v8.ogg") == 60
    assert piano.note_to_midi("D#3v16.ogg") == 51 and piano.note_to_midi("C8v2.ogg") == 108
    with pytest.raises(ValueError):
        piano.note_to_midi("readme.txt")
    bands = piano.velocity_bands(16)
    assert bands[0] == (0, 7) and bands[-1] == (120, 127)
    assert all(b[0] == a[1] + 1 for a, b in zip(bands, bands[1:]))
    ranges = piano.key_ranges([21, 24, 27, 108])
    assert ranges[21] == (0, 22) and ranges[24] == (23, 25) and ranges[108][1] == 127


def test_soundfont_round_trip(tmp_path):
    zones = [sine_zone(220.0, 57, key_lo=0, key_hi=63, vel_lo=0, vel_hi=63, name="low"),
             sine_zone(330.0, 64, key_lo=64, key_hi=127, vel_lo=64, vel_hi=127, name="high")]
    path = str(tmp_path / "t.sf2")
    digest = soundfont.write_sf2(path, zones)
    assert digest == hashlib.sha256(open(path, "rb").read()).hexdigest()
    back = soundfont.read_sf2_zones(path)
    assert [(z["key"], z["vel"], z["root_key"], z["sample_rate"]) for z in back] == \
           [((0, 63), (0, 63), 57, 24000), ((64, 127), (64, 127), 64, 24000)]
    for z, b in zip(zones, back):
        np.testing.assert_array_equal(z.samples, b["samples"])
    assert soundfont.write_sf2(str(tmp_path / "u.sf2"), zones) == digest  # deterministic


@needs_synth
def test_fluidsynth_plays_the_right_pitch_and_ignores_velocity_for_level(tmp_path):
    sf2 = str(tmp_path / "sine.sf2")
    soundfont.write_sf2(sf2, [sine_zone(220.0, 57)])  # A3 sample
    # A4 (key 69) soft at 0 s, loud at 1.5 s (120 bpm: a beat is 0.5 s), each 1 s long
    midi = write_midi(str(tmp_path / "n.mid"), [(69, 30, 0, 2), (69, 120, 3, 2)])
    wav = str(tmp_path / "n.wav")
    build.render(midi, sf2, wav)
    x = load_audio(wav)
    soft, loud = x[int(0.1 * 16000):int(0.9 * 16000)], x[int(1.6 * 16000):int(2.4 * 16000)]
    assert abs(dominant_hz(soft) - 440.0) < 5 and abs(dominant_hz(loud) - 440.0) < 5
    # velocity-to-attenuation/filter modulators are switched off: one layer plays at one level
    assert abs(np.sqrt(np.mean(soft ** 2)) / np.sqrt(np.mean(loud ** 2)) - 1) < 0.02


@needs_synth
def test_rendering_is_bit_reproducible(tmp_path):
    sf2 = str(tmp_path / "sine.sf2")
    soundfont.write_sf2(sf2, [sine_zone(220.0, 57)])
    midi = write_midi(str(tmp_path / "c.mid"), [(60, 90, 0, 1), (64, 90, 0, 1), (67, 90, 0.5, 2)])
    digests = []
    for i in range(2):
        build.render(midi, sf2, str(tmp_path / f"r{i}.wav"))
        digests.append(hashlib.sha256(open(tmp_path / f"r{i}.wav", "rb").read()).hexdigest())
    assert digests[0] == digests[1]


def test_clean_midi_sets_piano_and_drops_drums(tmp_path):
    src = write_midi(str(tmp_path / "in.mid"), [(60, 80, 0, 1), (62, 80, 1, 1)], program=40, drums=True)
    dst = str(tmp_path / "out.mid")
    length = build.clean_midi(src, dst)
    msgs = list(mido.MidiFile(dst).tracks[0])
    assert [m.program for m in msgs if m.type == "program_change"] == [0]
    assert not [m for m in msgs if not m.is_meta and m.channel == 9]
    # note timing survives the removal of the interleaved drum messages
    ticks, starts = 0, []
    for m in msgs:
        ticks += m.time
        if m.type == "note_on" and m.velocity > 0:
            starts.append((m.note, ticks))
    assert starts == [(60, 0), (62, 480)]
    assert abs(length - mido.MidiFile(src).length) < 1e-6


def test_split_holds_whole_works_and_some_solo_piano():
    pieces = [build.Piece("quartets", f"haydn/op{i}/movement{m}.mxl", f"haydn/op{i}", False)
              for i in range(30) for m in range(4)]
    pieces += [build.Piece("jam", f"p{i}.mid", f"p{i}.mid", True) for i in range(14)]
    splits = build.choose_splits(pieces, 0.01, seed=0)
    for i in range(30):
        assert len({splits[f"quartets__haydn__op{i}__movement{m}.wav"] for m in range(4)}) == 1
    held = [p for p in pieces if splits[p.name + ".wav"] == "eval"]
    assert any(p.solo for p in held) and any(not p.solo for p in held)
    # every piece counts as 1 s here: each group holds out at most twice a quarter of its music
    for solo in (True, False):
        group = [p for p in pieces if p.solo == solo]
        assert sum(1 for p in held if p.solo == solo) <= 2 * 0.25 * len(group)


@pytest.mark.slow
@needs_synth
def test_tiny_corpus_builds_end_to_end(tmp_path):
    out = str(tmp_path / "corpus")
    info = build.build(out, tiny=True, log=lambda s: None)
    assert not info["failed"]
    assert 0.8 < info["total_hours"] * 60 < 1.2  # about one minute
    totals = info["manifest_totals"]
    assert set(totals) == {"train", "eval"}
    assert sum(t["n_files"] for t in totals.values()) == 2
    x = load_audio(os.path.join(out, "wav", "keyboard__mozart__k545__movement1_exposition.wav"))
    assert 0.85 < np.abs(x).max() < 0.95  # normalised to -1 dBFS
    # a second build renders nothing new and gives the same bytes
    before = {f: hashlib.sha256(open(os.path.join(out, "wav", f), "rb").read()).hexdigest()
              for f in os.listdir(os.path.join(out, "wav"))}
    build.build(out, tiny=True, log=lambda s: None)
    after = {f: hashlib.sha256(open(os.path.join(out, "wav", f), "rb").read()).hexdigest()
             for f in os.listdir(os.path.join(out, "wav"))}
    assert before == after


def test_held_out_split_holds_ten_minutes_of_whole_works_with_solo_piano():
    rng = np.random.default_rng(0)
    pieces = [build.Piece("jam", f"p{i}.mid", f"p{i}.mid", True) for i in range(20)]
    pieces += [build.Piece("quartets", f"q{i}/m{m}.mxl", f"q{i}", False) for i in range(12) for m in range(3)]
    pieces += [build.Piece("quartets", "long/m0.mxl", "long", False)]
    seconds = {p.name: float(rng.uniform(60, 300)) for p in pieces}
    seconds["quartets__long__m0"] = 2400.0  # a 40-minute work
    splits = build.choose_splits(pieces, 0.01, seed=0, seconds=seconds)
    assert splits == build.choose_splits(list(reversed(pieces)), 0.01, seed=0, seconds=seconds)  # deterministic
    held = [p for p in pieces if splits[p.name + ".wav"] == "eval"]
    for solo in (True, False):
        assert sum(seconds[p.name] for p in held if p.solo == solo) >= 300.0
    assert sum(seconds[p.name] for p in held) < 0.2 * sum(seconds.values())
    assert splits["quartets__long__m0.wav"] == "train"
    for i in range(12):
        assert len({splits[f"quartets__q{i}__m{m}.wav"] for m in range(3)}) == 1


def test_forced_held_out_works_are_the_shortest():
    # every work is longer than twice the 5 minutes each group needs: only the shortest is held out
    pieces = [build.Piece("jam", f"p{i}.mid", f"p{i}.mid", True) for i in range(5)]
    pieces += [build.Piece("quartets", f"q{i}.mxl", f"q{i}", False) for i in range(5)]
    seconds = {p.name: 1500.0 - 10 * i for i, p in enumerate(pieces)}
    splits = build.choose_splits(pieces, 0.0, seed=0, seconds=seconds)
    assert sorted(k for k, v in splits.items() if v == "eval") == ["jam__p4.wav", "quartets__q4.wav"]


def test_works_rendered_from_two_sources_are_one_work():
    """The jam MIDI of K.545 i and the Maple Leaf Rag are also keyboard scores: one work each, so
    the held-out split never hears a work the model trained on from the other source."""
    for jam_key, work in build.SAME_WORK.items():
        assert work in build.KEYBOARD_SCORES and jam_key.endswith(".mid")
        pieces = [build.Piece("jam", jam_key, work, True), build.Piece("keyboard", work, work, True)]
        pieces += [build.Piece("jam", f"p{i}.mid", f"p{i}.mid", True) for i in range(6)]
        for seed in range(5):
            splits = build.choose_splits(pieces, 0.3, seed=seed)
            assert splits[pieces[0].name + ".wav"] == splits[pieces[1].name + ".wav"]


def test_a_group_with_one_work_is_never_held_out_whole():
    one_each = [build.Piece("jam", "a.mid", "a.mid", True), build.Piece("quartets", "q.mxl", "q", False)]
    assert set(build.choose_splits(one_each, 0.0, seed=0).values()) == {"train"}
    three = one_each + [build.Piece("jam", "b.mid", "b.mid", True)]
    splits = build.choose_splits(three, 0.0, seed=0)
    assert splits["quartets__q.wav"] == "train"  # the only non-piano work stays in training
    assert sorted(splits.values()) == ["eval", "train", "train"]


def test_the_default_corpus_is_pinned_with_whole_works_per_split():
    """Issue 10: the default corpus is the same for every build: its recordings, split and works
    come from tf_ada/corpus/default_corpus.csv, not from the order renders finish."""
    pinned = build.read_default_corpus()
    assert len(pinned) == 105 and {s for s, _ in pinned.values()} == {"train", "eval"}
    split_of_work = {}
    for name, (split, work) in pinned.items():
        assert split_of_work.setdefault(work, split) == split, f"{work} is in two splits"
    held = [n for n, (s, _) in pinned.items() if s == "eval"]
    assert any(n.startswith(("jam__", "keyboard__")) for n in held)  # solo piano held out
    # the two renderings of K.545 i are one work, held out together
    assert pinned["jam__classical__mozart-k545-mvt1.wav"] == pinned["keyboard__mozart__k545__movement1_exposition.wav"]


def test_pinned_pieces_selects_them_and_names_what_is_missing():
    pieces = [build.Piece("jam", "a.mid", "a.mid", True), build.Piece("chorales", "bach/b.mxl", "bach/b.mxl", False),
              build.Piece("chorales", "bach/c.mxl", "bach/c.mxl", False)]
    pinned = {"jam__a.wav": ("train", "a.mid"), "chorales__bach__c.wav": ("eval", "bach/c.mxl")}
    assert [p.name for p in build.pinned_pieces(pieces, pinned)] == ["jam__a", "chorales__bach__c"]
    from tf_ada.data import DataError
    with pytest.raises(DataError, match=r"1 pinned recording\(s\) are not in the sources \(jam__gone.wav\)"):
        build.pinned_pieces(pieces, {**pinned, "jam__gone.wav": ("train", "gone.mid")})
    with pytest.raises(DataError, match="pinned work differs"):
        build.pinned_pieces(pieces, {"jam__a.wav": ("train", "other.mid")})


def test_only_the_default_build_uses_the_pinned_corpus(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(build, "require_tool", lambda name: name)
    monkeypatch.setattr(build, "_build_locked", lambda out, hours, *a: seen.append((hours, a[-1])) or {})
    build.build(str(tmp_path / "a"))
    build.build(str(tmp_path / "b"), hours=1.0)
    build.build(str(tmp_path / "c"), sources=["jam"])
    build.build(str(tmp_path / "d"), tiny=True)
    assert seen[0] == (build.DEFAULT_HOURS, build.read_default_corpus())
    assert [pinned for _, pinned in seen[1:]] == [None, None, None] and seen[1][0] == 1.0


def test_the_scripts_default_data_is_the_pinned_corpus(tmp_path, monkeypatch):
    """`make demo` and the reproduce scripts build the corpus through table1.default_data: without
    --hours it must be the pinned default (a fresh demo once built another corpus than the cards')."""
    from reproduce import table1
    calls = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(build, "build", lambda out, **kw: calls.append(kw))
    table1.default_data("cpu")
    assert calls == [{"hours": None, "tiny": False, "log": print}]

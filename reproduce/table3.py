"""Table 3 (sec. 4.4): stacks of levels sampled top-down, a listening page, and objective proxies for the ratings.

    python -m reproduce.table3 --scale tiny|cpu|paper [--data DIR] [--out DIR] [--steps N]
        [--stacks 3.1,3.4,...] [--n N] [--seconds S] [--seed S] [--table1 DIR] [--table2 DIR]
        [--ratings FILE ...] [--key KEY]
    python -m reproduce.table3 --scale cpu --dry-run       # costs of every level and of sampling

Stages, each resumable (run the same command again; finished work is reused):
  1. Levels (`tf_ada.stacks.train_stack`, under OUT/levels): each stack's levels trained bottom-up,
     each on the codes of the level below; stacks share their common levels (#1.2 for 3.4, 3.6 and
     3.7). `--table1 DIR` reuses the finished rows of reproduce/table1.py's output (#1.1 = 3.1, #1.2,
     #1.7); `--table2 DIR` those of reproduce/table2.py (#2.1 = 3.4's prior, the PBT #2.2's best
     member, #2.4), with the first level their code corpus was encoded from. Reused levels are
     never trained here.
  2. Samples (`tf_ada.stacks.sample_stack`, OUT/stacks/ROW/samples): N streams of S seconds per stack,
     sampled as one batch, with the base seed `--seed` (each level's seed in samples.json). A stack
     is done when OUT/stacks/ROW/row.json records the same steps, each level's checkpoint step, the
     corpus hash of --data, N, S, seed and reused levels (a level trained further is sampled again).
  3. Real held-out excerpts of the same length from the data folder's eval split (OUT/real): every
     non-overlapping excerpt, taken in turn from each recording (up to `--max-real`), for the measures;
     the first N of them as wavs for the page.
  4. Objective measures of each stack's samples (the wavs samples.json lists, `stacks.sample_wavs`)
     against the real excerpts (tf_ada/fidelity.py, docs/objective_measures.md): the Fréchet log-mel
     distance with its bootstrap SE (real clips resampled by piece) and the real-vs-real baseline
     (`fidelity.real_baseline_n`: N real excerpts against the rest, sharing no piece, averaged over
     splits, so that it compares as many clips as a stack's N samples);
     with the Basic Pitch transcriber installed (tf_ada/transcribe.py), the note measures
     (pitch-class distance, key clarity and change rate, note density, polyphony), each with its SE.
  5. The listening page OUT/listen/index.html and the blind page OUT/listen/blind/index.html, a folder
     to hand raters alone (reproduce/listening.py; key.json beside the named page), blind items cut
     to S seconds. Rebuilt only when a source file's contents changed (key.json's sha256 of each); the
     page id derives from the seed and those contents, so a rebuild from other audio gets new ids and
     ratings of the old build are refused.
  6. OUT/table3.md, OUT/table3.csv and OUT/table3.html: receptive fields (ours against the paper's,
     ms), the paper's human-rating columns (lost from our copy) beside ours (`--ratings`, summarised
     by `tf_ada.ratings.summarize`; "see ratings" until there are some), the objective measures ± SE,
     seconds of audio per wall-clock second, training minutes, and verdicts for the paper's
     qualitative claims that the measures can speak to (`CLAIMS`, `judge_claims`).

The objective measures are proxies: the paper's evidence is human ratings of fidelity and musicality.
A log-mel distance measures timbre and spectral balance, not music; the note measures see only what
the transcriber hears.
"""
from __future__ import annotations

import argparse
import collections
import csv
import glob
import io
import json
import math
import os
import sys
import time
from typing import Callable, Optional

import numpy as np

from reproduce import pages, report
from tf_ada import configs, fidelity, fileio, stacks
from tf_ada import evaluation as ev

STACKS = list(stacks.PAPER_TABLE3)
# samples per stack (streams, seconds) when --n / --seconds are not given
SAMPLING = {"tiny": (2, 0.25), "cpu": (8, 8.0), "paper": (16, 10.0)}
MAX_REAL = 128
NOT_RUN = report.NOT_RUN
NOTE_KEYS = ("key_clarity", "key_change_rate", "note_density", "polyphony")
# Bumped when the measures' contents change, so cached measures.json files are recomputed
# (2: clip counts per note measure, no SE from fewer than 2 clips, a pitch-class minimum of notes;
# 3: no pitch-class SE without a value, the count of valid resamples).
MEASURES_FORMAT = 3

# The paper's qualitative claims of sec. 4.4 that the objective measures can speak to: (key, text).
CLAIMS = [
    ("levels", "more levels, more musical structure (sec. 4.4: \"models with more levels receive higher "
               "[musicality] ratings\"); proxies: from 1-level to 2-level to 3-level stacks (means over the stacks "
               "of each level count) key clarity rises and the pitch-class distance to real audio falls"),
    ("fidelity", "fidelity roughly uniform across stacks except 3.3 (sec. 4.4: \"fairly uniform across all "
                 "models, except for #3.3\"); proxy: 3.3's Fréchet log-mel distance above every other stack's, and "
                 "every other stack within the real-vs-real distance of the mean of the rest"),
    ("coherence", "3.3 is the least coherent (sec. 4.4: \"fails to produce anything coherent\", \"the poorest "
                  "musicality rating\"); proxies: 3.3's pitch-class distance to real audio above, and its key "
                  "clarity below, every other stack's"),
]


# --- stage 1: levels, from Table 1 / Table 2 outputs or trained here ------------------------------------

def _row_json(path: str) -> Optional[dict]:
    """A finished, not diverged row.json, its run folder resolved where it is now
    (`report.row_run_dir`: the folder beside it, or for a PBT row its best member's folder)."""
    if os.path.exists(path):
        with open(path) as f:
            result = json.load(f)
        if not result.get("diverged") and result.get("run_dir"):
            result["run_dir"] = report.resolve_run_dir(result, path)
            return result
    return None


def reused_levels(row: str, scale: str, data_dir: str, table1: Optional[str] = None, table2: Optional[str] = None,
                  log: Callable[[str], None] = print) -> dict:
    """{role: {"run", "trained_on", "from"}} of stack `row`'s levels finished in a Table 1 output folder
    (rows 1.1, 1.2, 1.7: their row.json, trained on `data_dir`, which their corpus hash must match) or
    a Table 2 output folder (rows 2.1, 2.2's best PBT member, 2.4, trained on TABLE2/codes, whose
    source corpus hash must match `data_dir`'s; the first level is then the run those codes were
    encoded from, whatever `table1` holds). A corpus mismatch exits naming the folder."""
    from tf_ada import data
    out = {}
    levels = stacks.stack(row, scale).levels
    if table1:
        for lv in levels:
            if not lv.source.startswith("Table 1 row"):
                continue
            r = lv.source.split()[-1]
            result = _row_json(os.path.join(table1, configs.table1_row(r, scale).name, "row.json"))
            if result is None:
                log(f"table3: stack {row}: no finished Table 1 row {r} in {table1}; its {lv.role} level is "
                    "trained here")
                continue
            has_manifest = os.path.exists(os.path.join(data_dir, data.MANIFEST))
            ours = data.corpus_hash(data_dir) if has_manifest else None  # a dry run may have no corpus yet
            if ours and result.get("corpus_hash") and result["corpus_hash"] != ours:
                raise SystemExit(f"table3: {table1}: Table 1 row {r} was trained on corpus "
                                 f"{result['corpus_hash'][:12]}, not on {data_dir} ({ours[:12]}); give the same --data")
            out[lv.role] = {"run": result["run_dir"], "trained_on": data_dir, "from": f"Table 1 row {r}"}
    if table2:
        codes = os.path.join(table2, "codes")
        for lv in levels:
            if not lv.source.startswith("Table 2 row"):
                continue
            r = lv.source.split()[-1]
            name = configs.table2_row(r, scale).name
            result = _row_json(os.path.join(table2, f"{name}_pbt" if r == "2.2" else name, "row.json"))
            if result is None or not os.path.exists(os.path.join(codes, data.MANIFEST)):
                log(f"table3: stack {row}: no finished Table 2 row {r} in {table2}; its {lv.role} level is "
                    "trained here")
                continue
            manifest = data.Manifest.read(codes)
            ours = data.corpus_hash(data_dir) if os.path.exists(os.path.join(data_dir, data.MANIFEST)) else None
            if ours and manifest.source_corpus_hash and manifest.source_corpus_hash != ours:
                raise SystemExit(f"table3: {codes}: Table 2's codes (row {r}) were encoded from corpus "
                                 f"{manifest.source_corpus_hash[:12]} ({manifest.source_data}), not from {data_dir} "
                                 f"({ours[:12]}); give the same --data")
            first = stacks.codes_writer(manifest)
            if first and not stacks.is_shipped(first) and not os.path.isdir(first):
                first = None  # a run folder that is gone
            if not first:
                log(f"table3: stack {row}: {codes} are the codes of {manifest.source_checkpoint}, neither a run "
                    f"folder nor a shipped model whose weights are still those; Table 2 row {r} is not reused")
                continue
            out[lv.role] = {"run": result["run_dir"], "trained_on": codes, "from": f"Table 2 row {r}"}
            source_data = manifest.source_data if manifest.source_data and os.path.isdir(manifest.source_data) else None
            out["first"] = {"run": first, "trained_on": source_data or data_dir,  # same corpus hash (above)
                            "from": f"Table 2's first level ({manifest.source_experiment}"
                                    + (", shipped)" if stacks.is_shipped(first) else ")")}
    return out


# --- stages 1 and 2 for one stack -----------------------------------------------------------------------

def run_stack(row: str, scale: str, data_dir: str, out: str, steps: Optional[int], n: int, seconds: float,
              seed: int = 0, reuse: Optional[dict] = None, log: Callable[[str], None] = print,
              minutes: Optional[dict] = None, evaluate: bool = True) -> dict:
    """Trains what stack `row` lacks (OUT/levels), samples it (OUT/stacks/ROW/samples) and returns its
    row.json; reuses a finished stack (same steps, checkpoint step of every level, corpus hash of
    `data_dir`, streams, seconds, seed and reused levels: a level trained further since is sampled again).

    minutes: {run folder: (minutes, source)} shared by the stacks of one invocation: a level shared by
    stacks is timed when first met (`train_stack` reopens a finished level for every stack, and the
    run's log times would count those visits). evaluate: False trains levels without held-out evaluations."""
    minutes = {} if minutes is None else minutes
    st = stacks.stack(row, scale, steps)
    stack_dir = os.path.join(out, "stacks", row)
    samples_dir = os.path.join(stack_dir, "samples")
    done_path = os.path.join(stack_dir, "row.json")
    reuse = reuse or {}
    from tf_ada import data
    level_dirs = {lv.role: (reuse.get(lv.role) or {}).get("run") or os.path.join(out, "levels", lv.experiment.name)
                  for lv in st.levels}

    def wanted_now() -> dict:  # what the samples come from, checkpoints as they are now
        return {"steps": {lv.role: lv.experiment.train.steps for lv in st.levels},
                "checkpoint_steps": {role: stacks.level_step(d) for role, d in level_dirs.items()},
                "corpus_hash": data.corpus_hash(data_dir), "streams": n, "seconds_requested": seconds, "seed": seed,
                "reused": {role: stacks.level_path(r["run"]) for role, r in sorted(reuse.items())}}

    wanted = wanted_now()
    if os.path.exists(done_path) and os.path.exists(os.path.join(samples_dir, "samples.json")):
        with open(done_path) as f:
            done = json.load(f)
        if all(done.get(k) == v for k, v in wanted.items()):
            log(f"table3: stack {row} already done ({done_path})")
            # where they are now (the folder may have been moved or run through another path)
            return dict(done, samples_dir=os.path.abspath(samples_dir),
                        stack_file=os.path.abspath(os.path.join(out, "levels", os.path.basename(done["stack_file"]))))
    t0 = time.monotonic()
    desc = stacks.train_stack(row, scale, data_dir, os.path.join(out, "levels"), steps, log=log, reuse=reuse,
                              evaluate=evaluate)
    _, folders = stacks.read_runs(desc)
    loaded = stacks.load_stack(row, folders, log=log, corpora=stacks.read_corpora(desc))
    train_seconds = time.monotonic() - t0
    log(f"table3: stack {row}: sampling {n} stream(s) x {seconds:g} s")
    summary = stacks.sample_stack(loaded, seconds, n, samples_dir, seed=seed, log=log)
    levels = {}
    for lv in st.levels:
        folder = folders[lv.role]
        key = stacks.level_path(folder)
        if key not in minutes:
            minutes[key] = (stacks.shipped_minutes(folder) if stacks.is_shipped(folder)
                            else report.training_minutes(folder, None))
        level_minutes, source = minutes[key]
        levels[lv.role] = {"experiment": loaded.experiments[lv.role].name, "source": lv.source,
                           "run_dir": stacks.level_path(folder), "step": stacks.level_step(folder),
                           "minutes": level_minutes, "minutes_source": source,
                           "reused_from": (reuse.get(lv.role) or {}).get("from")}
    known = [lv["minutes"] for lv in levels.values() if lv["minutes"] is not None]
    result = dict(wanted_now(), row=row, description=st.description, n_levels=st.n_levels,
                  rf_ms=round(loaded.receptive_field_ms, 2), paper_rf_ms=st.paper_receptive_field_ms,
                  stack_file=os.path.abspath(desc), samples_dir=os.path.abspath(samples_dir), levels=levels,
                  seconds_per_stream=summary["seconds_per_stream"], seeds=summary["seeds"],
                  audio_seconds_per_wall_second=summary["audio_seconds_per_wall_second"],
                  sampling_wall_seconds=summary["wall_seconds_total"],
                  minutes=float(sum(known)) if known else None,
                  session_minutes=(time.monotonic() - t0) / 60, train_session_minutes=train_seconds / 60)
    fileio.atomic_write_json(done_path, result)
    return result


# --- stage 3: real held-out excerpts --------------------------------------------------------------------

def real_excerpts(data_dir: str, n_samples: int, max_clips: int = MAX_REAL) -> tuple:
    """(clips: float audio `[n_samples]` each, pieces: the piece of each, names: "recording@offset")
    of the data folder's eval split: non-overlapping excerpts, taken in turn from each recording (so
    that the first few already spread over the recordings), at most `max_clips`."""
    from tf_ada import data, ops
    from tf_ada.evaluation import read_recordings
    manifest = data.Manifest.read(data_dir)
    files = manifest.split_files(manifest.eval_split)
    recordings = read_recordings(data_dir, list(files)) if files else {}
    offsets = {name: list(range(0, len(x) - n_samples + 1, n_samples)) for name, x in recordings.items()}
    clips, pieces, names = [], [], []
    depth = 0
    while len(clips) < max_clips and any(depth < len(o) for o in offsets.values()):
        for name in sorted(offsets):
            if depth < len(offsets[name]) and len(clips) < max_clips:
                start = offsets[name][depth]
                clips.append(ops.mu_law_decode(recordings[name][start:start + n_samples].astype(np.int32)).numpy())
                pieces.append(files[name].piece or name)
                names.append(f"{name}@{start}")
        depth += 1
    if not clips:
        raise SystemExit(f"table3: {data_dir}: no held-out ({manifest.eval_split}) recording holds "
                         f"{n_samples / stacks.SAMPLE_RATE:g} s; choose a shorter --seconds")
    return clips, pieces, names


def write_real_wavs(clips: list, names: list, n: int, out_dir: str) -> list:
    """The first `n` excerpts as OUT/real/excerpt_NN.wav (for the page), and real.json naming them."""
    from tf_ada.audio import save_wav
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for i, clip in enumerate(clips[:n]):
        path = os.path.join(out_dir, f"excerpt_{i:02d}.wav")
        save_wav(path, clip)
        paths.append(path)
    fileio.atomic_write_json(os.path.join(out_dir, "real.json"), {"excerpts": dict(zip(
        [os.path.basename(p) for p in paths], names[:n])), "clips_for_measures": len(clips)})
    return paths


# --- stage 4: objective measures ------------------------------------------------------------------------

class Measures:
    """The real reference (clips and pieces) and, lazily, its transcription; measures of a set of samples
    against it (`of`), the real-vs-real baselines (`baseline`)."""

    def __init__(self, clips: list, pieces: list, n_bootstrap: int, seed: int = 0, log: Callable = print):
        from tf_ada import transcribe
        self.clips, self.pieces, self.n_bootstrap, self.seed, self.log = clips, pieces, n_bootstrap, seed, log
        self.seconds = len(clips[0]) / stacks.SAMPLE_RATE
        self.notes_available = transcribe.available()
        self.notes_reason = None if self.notes_available else "not run (basic-pitch not installed)"
        self._transcriber, self._reference_notes = None, None

    def key(self) -> dict:
        return {"clips": len(self.clips), "n_samples": len(self.clips[0]), "pieces": sorted(set(map(str, self.pieces))),
                "n_bootstrap": self.n_bootstrap, "seed": self.seed, "notes": self.notes_available,
                "format": MEASURES_FORMAT, "pitch_class_min_notes": fidelity.PITCH_CLASS_MIN_NOTES}

    def _notes(self, clips: list) -> list:
        from tf_ada import transcribe
        if self._transcriber is None:
            self._transcriber = transcribe.Transcriber()
        return [(self._transcriber(c), self.seconds) for c in clips]

    def reference_notes(self) -> list:
        if self._reference_notes is None:
            self.log(f"table3: transcribing {len(self.clips)} real excerpts (Basic Pitch)")
            self._reference_notes = self._notes(self.clips)
        return self._reference_notes

    def of(self, samples: list) -> dict:
        """{"frechet_log_mel": {value, se, ...}, "notes": note_measures' dict or None, "notes_reason"}."""
        out = {"frechet_log_mel": fidelity.frechet_log_mel(samples, self.clips, self.n_bootstrap, self.seed,
                                                           reference_groups=self.pieces),
               "notes": None, "notes_reason": self.notes_reason}
        if self.notes_available:
            out["notes"] = fidelity.note_measures(self._notes(samples), self.reference_notes(), self.n_bootstrap,
                                                  self.seed, reference_groups=self.pieces)
        return out

    def baseline(self, n: int) -> dict:
        """Real against real: the Fréchet log-mel distance of `n` excerpts (a stack's streams) from the
        rest, sharing no piece, averaged over splits (`fidelity.real_baseline_n`); the note measures of
        two halves sharing no piece; {"reason"} when there is one piece or no split fits."""
        if len(set(map(str, self.pieces))) < 2:
            return {"reason": f"the held-out excerpts come from one piece ({self.pieces[0]}): no real-vs-real split"}
        fd = fidelity.real_baseline_n(self.clips, self.pieces, n, n_bootstrap=self.n_bootstrap, seed=self.seed)
        if "reason" in fd:
            return {"reason": fd["reason"]}
        out = {"frechet_log_mel": fd, "notes": None, "notes_reason": self.notes_reason}
        if self.notes_available:
            ia, ib = fidelity.split_halves(self.pieces, self.seed)
            notes = self.reference_notes()
            out["notes"] = fidelity.note_measures([notes[i] for i in ia], [notes[i] for i in ib], self.n_bootstrap,
                                                  self.seed, [self.pieces[i] for i in ia],
                                                  [self.pieces[i] for i in ib])
        return out


def sample_clips(samples_dir: str, n_samples: int) -> list:
    """A stack's samples (the audio/stream_NN.wav its samples.json lists, `stacks.sample_wavs`) as
    float audio, each cut to `n_samples`."""
    from tf_ada.audio import read_wav
    return [read_wav(p)[0][:n_samples, 0].astype(np.float64) for p in stacks.sample_wavs(samples_dir)]


def stack_measures(result: dict, measures: Measures, log: Callable = print) -> dict:
    """The objective measures of a stack's samples (cached in OUT/stacks/ROW/measures.json, keyed by
    the reference and the sha256 of every sample wav)."""
    path = os.path.join(os.path.dirname(result["samples_dir"]), "measures.json")
    key = dict(measures.key(), samples_wall_seconds=result["sampling_wall_seconds"], seed=result["seed"],
               samples_sha256=[fileio.sha256_file(w) for w in stacks.sample_wavs(result["samples_dir"])])
    if os.path.exists(path):
        with open(path) as f:
            cached = json.load(f)
        if cached.get("key") == json.loads(json.dumps(key)):
            return cached
    log(f"table3: stack {result['row']}: objective measures against {len(measures.clips)} real excerpts")
    m = measures.of(sample_clips(result["samples_dir"], len(measures.clips[0])))
    m["key"] = key
    fileio.atomic_write_json(path, m, default=float)
    return m


# --- stage 6: claims ------------------------------------------------------------------------------------

def estimates(measures: dict) -> dict:
    """{row: {"frechet": (value, se), "pitch_class_distance": (value, se) or None, "key_clarity": ...}}
    from each stack's measures (`stack_measures`)."""
    out = {}
    for row, m in measures.items():
        fd, notes = m["frechet_log_mel"], m.get("notes")
        out[row] = {"frechet": (fd["value"], fd["se"]),
                    "pitch_class_distance": (notes["pitch_class_distance"]["value"],
                                             notes["pitch_class_distance"]["se"]) if notes else None,
                    "key_clarity": (notes["key_clarity"]["samples"]["value"],
                                    notes["key_clarity"]["samples"]["se"]) if notes else None}
    return out


def _mean(parts: list) -> tuple:
    """The mean of independent estimates [(value, se)] and its SE (sqrt of the summed variances / k)."""
    return (float(np.mean([v for v, _ in parts])), math.sqrt(sum(s * s for _, s in parts)) / len(parts))


_Estimate = collections.namedtuple("_Estimate", "value se")


def _diff(a: tuple, b: tuple) -> tuple:
    """a - b for (value, se) estimates on different samples (`evaluation.independent_difference`: SEs
    in quadrature). Two stacks' distances share the real reference, whose resampling moves both the
    same way, so this SE is conservative."""
    return ev.independent_difference(_Estimate(*a), _Estimate(*b))


def _condition(label: str, estimate: tuple, sign: int) -> tuple:
    return ev.verdict(estimate[0], estimate[1], sign), f"{label}: {report.fmt(estimate[0], estimate[1], 3)} " \
                                                       f"(want {'> 0' if sign > 0 else '< 0'})"


def _judged(parts: list) -> tuple:
    return ev.combine(v for v, _ in parts), "; ".join(text for _, text in parts)


def judge_claims(est: dict, baseline_frechet: Optional[tuple] = None, notes_reason: Optional[str] = None) -> list:
    """[(claim text, verdict, evidence)] of `CLAIMS` from `estimates(...)`'s dict (rows present only)
    and the real-vs-real Fréchet distance (value, se) of as many real clips as a stack's samples
    (`fidelity.real_baseline_n`; the "roughly uniform" tolerance; None: uniformity not judged, so
    the claim is at most inconclusive). Each condition is `tf_ada.evaluation.verdict` on a
    difference ± SE; uniformity's condition is baseline - |stack - mean of the other stacks|, its
    SE the baseline's and the difference's in quadrature; with one stack besides 3.3 uniformity
    cannot be judged (inconclusive). A claim holds when all its conditions hold, does not hold
    when any does not (`evaluation.combine`); "not run" with the reason when its measures are
    missing or have no value (too few transcribed notes)."""
    out = []
    rows = [r for r in STACKS if r in est]
    notes = all(est[r]["pitch_class_distance"] is not None for r in rows) and rows

    def defined(which: list) -> bool:  # any of these stacks has a note measure with a value
        return any(est[r][m] is not None and est[r][m][0] is not None and math.isfinite(est[r][m][0])
                   for r in which for m in ("pitch_class_distance", "key_clarity"))

    too_few = (f"not run (too few transcribed notes: the measures compared have no value; a pitch-class distance "
               f"needs {fidelity.PITCH_CLASS_MIN_NOTES} notes per set, a key a 4-s window with 3, a level count's mean "
               "every stack's value)")
    why_notes = notes_reason or "not run (no note measures)"
    by_levels = {k: [r for r in rows if stacks.PAPER_TABLE3[r][1] == k] for k in (1, 2, 3)}
    for key, text in CLAIMS:
        if key == "levels":
            groups = [k for k in (1, 2, 3) if by_levels[k]]
            if not notes:
                out.append((text, NOT_RUN, why_notes))
                continue
            if len(groups) < 2:
                out.append((text, NOT_RUN, "needs stacks of at least two level counts"))
                continue
            parts, finite = [], False
            for lo, hi in zip(groups, groups[1:]):
                for measure, sign in (("key_clarity", 1), ("pitch_class_distance", -1)):
                    a = _mean([est[r][measure] for r in by_levels[hi]])
                    b = _mean([est[r][measure] for r in by_levels[lo]])
                    d = _diff(a, b)
                    finite = finite or (d[0] is not None and math.isfinite(d[0]))
                    parts.append(_condition(f"{measure} {hi}-level - {lo}-level", d, sign))
            out.append((text,) + (_judged(parts) if finite else (NOT_RUN, too_few + "; " + _judged(parts)[1])))
        elif key == "fidelity":
            others = [r for r in rows if r != "3.3"]
            if "3.3" not in rows or not others:
                out.append((text, NOT_RUN, "needs 3.3 and another stack"))
                continue
            parts = [_condition(f"3.3 - {r}", _diff(est["3.3"]["frechet"], est[r]["frechet"]), 1) for r in others]
            base, base_se = baseline_frechet if baseline_frechet is not None else (None, None)
            if base is None or not math.isfinite(base):
                parts.append((ev.INCONCLUSIVE, "uniformity not judged (no real-vs-real baseline)"))
            elif len(others) < 2:
                parts.append((ev.INCONCLUSIVE, f"uniformity not judged (one stack besides 3.3: {others[0]})"))
            else:
                for r in others:
                    rest = _mean([est[q]["frechet"] for q in others if q != r])
                    d, se = _diff(est[r]["frechet"], rest)
                    parts.append(_condition(f"real-vs-real {base:.3f} ± {base_se:.3f} - |{r} - mean of the rest|",
                                            (base - abs(d), math.hypot(se, base_se)), 1))
            out.append((text,) + _judged(parts))
        elif key == "coherence":
            others = [r for r in rows if r != "3.3"]
            if not notes:
                out.append((text, NOT_RUN, why_notes))
                continue
            if "3.3" not in rows or not others:
                out.append((text, NOT_RUN, "needs 3.3 and another stack"))
                continue
            if not (defined(["3.3"]) and defined(others)):
                out.append((text, NOT_RUN, too_few))
                continue
            parts = []
            for r in others:
                parts.append(_condition(f"pitch-class distance 3.3 - {r}", _diff(est["3.3"]["pitch_class_distance"],
                                                                                 est[r]["pitch_class_distance"]), 1))
                parts.append(_condition(f"key clarity 3.3 - {r}", _diff(est["3.3"]["key_clarity"],
                                                                        est[r]["key_clarity"]), -1))
            out.append((text,) + _judged(parts))
    return out


# --- stage 6: the report --------------------------------------------------------------------------------

def _ve(d: Optional[dict]) -> tuple:
    return (d["value"], d["se"]) if d else (None, None)


def table_rows(results: dict, measures: dict, baseline: dict, human: Optional[dict], out: Optional[str] = None) -> list:
    """table3.csv's lines: one per stack, then the real held-out excerpts. Paths relative to `out`."""
    lines = []
    for row in [r for r in STACKS if r in results]:
        r, m = results[row], measures.get(row) or {}
        notes = m.get("notes")
        line = {"row": row, "model": r["description"], "levels": r["n_levels"], "paper_rf_ms": r["paper_rf_ms"],
                "rf_ms": r["rf_ms"], "paper_fidelity": None, "paper_musicality": None}
        for measure in ("fidelity", "musicality"):
            mean, se, raters = (human or {}).get(row, {}).get(measure, (None, None, 0))
            line.update({f"human_{measure}": mean, f"human_{measure}_se": se, f"human_{measure}_raters": raters})
        line["frechet_log_mel"], line["frechet_log_mel_se"] = _ve(m.get("frechet_log_mel"))
        line["pitch_class_distance"], line["pitch_class_distance_se"] = _ve((notes or {}).get("pitch_class_distance"))
        line["notes_transcribed"] = ((notes or {}).get("pitch_class_distance") or {}).get("n_notes_samples")
        for k in NOTE_KEYS:
            samples = (notes or {}).get(k, {}).get("samples")
            line[k], line[k + "_se"] = _ve(samples)
            line[k + "_clips"] = (samples or {}).get("n_clips")
        line.update(streams=r["streams"], seconds_per_stream=r["seconds_per_stream"],
                    audio_seconds_per_wall_second=r["audio_seconds_per_wall_second"], training_minutes=r["minutes"],
                    steps=" ".join(f"{role}:{lv['step']}" for role, lv in r["levels"].items()),
                    samples_dir=pages.relative(r["samples_dir"], out) if out else r["samples_dir"])
        lines.append(line)
    real = {k: None for k in lines[0]} if lines else {}
    fd = baseline.get("frechet_log_mel") or {}
    real.update(row="real", model=f"real held-out excerpts (real vs real, Fréchet: {fd.get('n', 'N')} excerpts "
                                  f"against the rest sharing no piece, mean of {fd.get('n_splits', 'several')} "
                                  "splits; pitch-class distance: two halves sharing no piece)")
    if baseline.get("frechet_log_mel"):
        real["frechet_log_mel"], real["frechet_log_mel_se"] = _ve(baseline["frechet_log_mel"])
    notes = baseline.get("notes")
    if notes:
        real["pitch_class_distance"], real["pitch_class_distance_se"] = _ve(notes["pitch_class_distance"])
    reference = next((m["notes"] for m in measures.values() if m.get("notes")), None)
    for k in NOTE_KEYS:  # the reference's own values (the same for every stack)
        if reference:
            real[k], real[k + "_se"] = _ve(reference[k]["reference"])
            real[k + "_clips"] = reference[k]["reference"].get("n_clips")
    for measure in ("fidelity", "musicality"):
        mean, se, raters = (human or {}).get("real", {}).get(measure, (None, None, 0))
        real.update({f"human_{measure}": mean, f"human_{measure}_se": se, f"human_{measure}_raters": raters})
    return lines + ([real] if lines else [])


def _human(line: dict, measure: str, have_ratings: bool) -> str:
    if not have_ratings:
        return "see ratings"
    n = line.get(f"human_{measure}_raters") or 0
    if not n:
        return "-"
    se = line[f"human_{measure}_se"]
    return (f"{line[f'human_{measure}']:.2f} ± {se:.2f}" if se is not None and math.isfinite(se)
            else f"{line[f'human_{measure}']:.2f} ± n/a") + f" ({n})"


HEADER = ["#", "model", "levels", "RF paper (ms)", "RF ours (ms)", "paper fidelity", "paper musicality",
          "our fidelity (raters)", "our musicality (raters)", "Fréchet log-mel", "pitch-class distance",
          "key clarity", "key change rate", "note density (/s)", "polyphony", "audio s per wall s",
          "training min"]


def _counted(line: dict, key: str, digits: int) -> str:
    """A note measure's cell: value ± SE, and "(k of n)" when only k of the n clips have a value."""
    text = report.fmt(line[key], line[key + "_se"], digits)
    k, n = line.get(key + "_clips"), line.get("streams")
    if text != "-" and k is not None and n and k < n:
        text += f" ({k} of {n} streams)"
    return text


def _pitch_class_cell(line: dict) -> str:
    """The pitch-class distance, or why there is none: fewer notes than `fidelity.PITCH_CLASS_MIN_NOTES`."""
    text = report.fmt(line["pitch_class_distance"], line["pitch_class_distance_se"], 3)
    notes = line.get("notes_transcribed")
    if text == "-" and notes is not None and notes < fidelity.PITCH_CLASS_MIN_NOTES:
        return f"- (too few notes: {notes})"
    return text


def _cells(line: dict, have_ratings: bool) -> list:
    f = report.fmt
    paper_human = "lost" if line["row"] != "real" else "-"
    return [line["row"], line["model"], f(line["levels"]), f(line["paper_rf_ms"]),
            f(line["rf_ms"], digits=1) if isinstance(line["rf_ms"], float) else f(line["rf_ms"]),
            paper_human, paper_human, _human(line, "fidelity", have_ratings), _human(line, "musicality", have_ratings),
            f(line["frechet_log_mel"], line["frechet_log_mel_se"], 1),
            _pitch_class_cell(line), _counted(line, "key_clarity", 3), _counted(line, "key_change_rate", 3),
            _counted(line, "note_density", 2), _counted(line, "polyphony", 2),
            f(line["audio_seconds_per_wall_second"], digits=4), f(line["training_minutes"], digits=1)]


def deviations(scale: str) -> list:
    return [
        {"tiny": "tiny scale: toy models and a step or two per level; the numbers only show that the pipeline runs.",
         "cpu": "cpu scale: the levels at the cpu sizes of configs.py (Table 1's and Table 2's cpu runs where reused), "
                "a few hundred steps each instead of 500,000.",
         "paper": "paper scale: appendix A sizes; steps, batch and excerpt lengths as Tables 1 and 2 (ours where "
                  "the paper is silent)."}[scale],
        "The paper's human ratings (Table 3's fidelity and musicality columns) are lost from our copy of the paper; "
        "our own ratings come from the listening page's blind mode (`--ratings`).",
        "Stack 3.6's second level trained here (not reused from `--table2`) is the VQ-VAE of #2.2 trained without PBT "
        "(`tf_ada.stacks.train_stack` uses the Trainer); with `--table2` it is the PBT population's best member.",
        "Priors on codes are trained on code corpora whose records are at least the prior's excerpt length "
        "(`encode_corpus(record_steps=...)`); the paper does not say how its priors' excerpts were cut.",
        "Receptive fields are the exact values of the configs (a large WaveNet sees 6139 steps; the paper rounds "
        "to 6144); ms at 16 kHz.",
    ]


def write_report(results: dict, measures: dict, baseline: dict, scale: str, out: str, data_dir: str,
                 n: int, seconds: float, seed: int, human: Optional[dict] = None, page: Optional[str] = None,
                 wall_minutes: Optional[float] = None) -> str:
    """OUT/table3.csv, OUT/table3.md and OUT/table3.html (see the module docstring); returns the markdown."""
    lines = table_rows(results, measures, baseline, human, out)
    if lines:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(lines[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(lines)
        fileio.atomic_write_text(os.path.join(out, "table3.csv"), buf.getvalue())
    have_ratings = human is not None
    fd = baseline.get("frechet_log_mel") or {}
    fd_base = (fd["value"], fd["se"]) if fd.get("value") is not None else None
    notes_reason = next((m.get("notes_reason") for m in measures.values() if m.get("notes_reason")), None)
    claims = judge_claims(estimates(measures), fd_base, notes_reason)
    n_real = (next(iter(measures.values()))["key"]["clips"] if measures else 0)
    intro = (f"{n} sample(s) of {seconds:g} s per stack, drawn top-down (`tf_ada.stacks.sample_stack`, base seed "
             f"{seed}; every level's seed in each stack's samples.json), against {n_real} held-out real excerpts of "
             f"the same length from `{data_dir}` (eval split). RF: the prior's receptive field in audio time. "
             "Objective measures (tf_ada/fidelity.py, docs/objective_measures.md), each ± a bootstrap standard "
             "error (samples resampled by stream, real excerpts by piece): **Fréchet log-mel** distance of the "
             "samples' log-mel frames from the real excerpts' (lower is closer; compare with the real-vs-real row); "
             "**pitch-class distance** (total variation, 0-1), **key clarity** (mean best Krumhansl-Kessler "
             "correlation over 4-s windows), **key change rate**, **note density** and **polyphony** of the notes "
             "Basic Pitch transcribes (the real row: the excerpts' own values; its pitch-class distance is half "
             "against half). Training minutes: every level's, over all its sessions (a level shared by stacks "
             "counts in each).")
    proxy = ("**The objective measures are proxies.** The paper's evidence for Table 3 is human ratings of fidelity "
             "and musicality (28 raters); a log-mel distance measures timbre and spectral balance, not music, and "
             "the note measures see only what the transcriber hears. Only the human ratings (`--ratings`) answer "
             "the paper's questions as it asked them.")
    md = [f"# Table 3 at `{scale}` scale", "", intro, "", proxy, "",
          "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    md += ["| " + " | ".join(str(c) for c in _cells(line, have_ratings)) + " |" for line in lines]
    if baseline.get("reason"):
        md += ["", f"Real-vs-real baseline: not available: {baseline['reason']}."]
    if notes_reason:
        md += ["", f"Note measures: {notes_reason}."]
    blind = pages.relative(os.path.join(os.path.dirname(page), "blind"), out) if page else None
    md += ["", f"Listening page: `{pages.relative(page, out)}`; blind rating: `{blind}/index.html`, a folder to hand "
               "raters alone (the key.json beside the named page maps its items to stacks)." if page else "", "",
           "## The paper's claims, judged by objective proxies", "",
           "Each condition is a difference ± SE (independent sets, SEs in quadrature: conservative, as the stacks "
           "share the real reference). **holds**: every condition beyond 2 SE in the claimed direction; **does not "
           "hold**: any condition beyond 2 SE the other way; **inconclusive** otherwise; **not run**: a measure is "
           "missing or has no value (too few transcribed notes). These judge the proxies, not the paper's ratings.", ""]
    md += [f"- {text}: **{verdict}**" + (f" [{evidence}]" if evidence else "") for text, verdict, evidence in claims]
    if human is not None:
        from tf_ada import ratings
        md += ["", "## Human ratings (the listening page's blind mode)", "", ratings.markdown_table(human).rstrip()]
    md += ["", "## Levels", ""]
    for row in [r for r in STACKS if r in results]:
        r = results[row]
        parts = [f"{role}: `{lv['experiment']}` step {lv['step']}"
                 + (f", reused from {lv['reused_from']}" if lv.get("reused_from") else ", trained here")
                 + f", {report.fmt(lv['minutes'], digits=1)} min" for role, lv in r["levels"].items()]
        md.append(f"- {row} ({r['description']}): " + "; ".join(parts)
                  + f"; samples `{pages.relative(r['samples_dir'], out)}` ({r['sampling_wall_seconds']:.1f} s wall)")
    md += ["", "## Deviations from the paper", ""] + [f"- {d}" for d in deviations(scale)]
    if wall_minutes is not None:
        md += ["", f"Wall time of this invocation: {wall_minutes:.1f} min."]
    text = "\n".join(md) + "\n"
    fileio.atomic_write_text(os.path.join(out, "table3.md"), text)

    # the HTML report (reproduce/pages.py), as Table 1's
    body = [_cells(line, have_ratings) for line in lines]
    parts = [pages.paragraph(intro.replace("**", "").replace("`", "")), pages.paragraph(proxy.replace("**", "")),
             pages.table(HEADER, body, caption="Table 3: stacks, receptive fields, ratings and objective measures")]
    if page:
        rel = pages.relative(page, out)
        brel = pages.relative(os.path.join(os.path.dirname(page), "blind", "index.html"), out)
        parts.append(pages.Raw(f"<p>Listening page: <a href='{pages.esc(rel)}'>{pages.esc(rel)}</a> (blind rating: "
                               f"<a href='{pages.esc(brel)}'>{pages.esc(brel)}</a>, a folder to hand raters "
                               "alone)</p>"))
    parts += [pages.heading("The paper's claims, judged by objective proxies"),
              pages.table(["claim", "verdict", "evidence (difference ± SE)"],
                          [[t, pages.verdict(v), pages.Raw("<br>".join(pages.esc(e) for e in ev_.split("; ")))]
                           for t, v, ev_ in claims])]
    prov = pages.provenance(steps={row: r["steps"] for row, r in results.items()}, data_dir=data_dir)
    pages.write_page(os.path.join(out, "table3.html"), f"Table 3 at {scale} scale", parts, prov)
    return text


# --- stage 5: the listening page -------------------------------------------------------------------------

def listening_page(out: str, sample_dirs: list, real_wavs: list, seed: int, seconds: Optional[float] = None,
                   log: Callable = print) -> str:
    """OUT/listen/index.html and the blind page OUT/listen/blind/index.html (reproduce/listening.py),
    blind items cut to `seconds` (the samples are rounded up to whole prior steps, the real excerpts
    are not: their lengths must not tell them apart). Rebuilt only when a source file's contents
    (key.json's sha256 of each), the seed or `seconds` changed; a rebuild from other audio gets a
    new page id and new blind ids, and ratings of the old build are refused."""
    from reproduce import listening
    page_dir = os.path.join(out, "listen")
    page, key_path = os.path.join(page_dir, "index.html"), os.path.join(page_dir, listening.KEY_FILE)
    shown = [w for d in sample_dirs for w in stacks.sample_wavs(d)]
    for d in sample_dirs:
        with open(os.path.join(d, "samples.json")) as f:
            shown += [w for role in (json.load(f).get("level_renders") or {}) for w in stacks.sample_wavs(d, role)]
    sources = {os.path.abspath(p): fileio.sha256_file(p) for p in shown + list(real_wavs)}
    if os.path.exists(page) and os.path.exists(os.path.join(page_dir, listening.BLIND_DIR, "index.html")) \
            and os.path.exists(key_path):
        with open(key_path) as f:
            key = json.load(f)
        if key.get("sources") == sources and key.get("seed") == seed and key.get("blind_seconds") == seconds:
            log(f"table3: listening page already done ({page})")
            return page
    return listening.write_listening_page(page_dir, sample_dirs, real_wavs, title="Table 3: listening page",
                                          seed=seed, blind_seconds=seconds)


# --- the dry run ----------------------------------------------------------------------------------------

def dry_run(rows: list, scale: str, steps, n: int, seconds: float, bench_dir: str, reuse: Optional[dict] = None) -> str:
    """Each stack's levels (parameters, receptive fields, FLOPs, memory, estimated time: `tf_ada.plan`),
    a level shared by stacks planned once, levels reused from Table 1/2 outputs not counted; and each
    stack's sampling work (steps per level x streams, generation FLOPs). Trains nothing."""
    from tf_ada import plan
    blocks, seen, total, missing, sampling = [], set(), 0.0, [], 0.0
    for row in rows:
        st = stacks.stack(row, scale, steps)
        blocks.append(f"== stack {row}: {st.description} ({st.n_levels} level(s), RF {st.receptive_field_ms:,.1f} ms; "
                      f"paper {st.paper_receptive_field_ms} ms)")
        for lv in st.levels:
            given = ((reuse or {}).get(row) or {}).get(lv.role)
            if given:
                blocks.append(f"[{lv.role}: reused from {given['from']} ({given['run']}), not trained]")
                continue
            if lv.experiment.name in seen:
                blocks.append(f"[{lv.role}: {lv.experiment.name}, shared with a stack above]")
                continue
            seen.add(lv.experiment.name)
            d = plan.describe(lv.experiment, bench_dir=bench_dir)
            blocks.append(f"[{lv.role}: {lv.source}]\n" + plan.format_plan(d, lv.experiment))
            if d["seconds"] is None:
                missing.append(lv.experiment.name)
            else:
                total += d["seconds"]
        n_top = math.ceil(seconds * stacks.SAMPLE_RATE / st.prior_hop)
        work, length = [], n_top
        for lv in reversed(st.levels):
            if lv.role != "prior":
                length *= lv.hop
            flops = n * length * stacks.generation_flops(lv.model)
            sampling += flops
            work.append(f"{lv.role} {length:,} steps ({flops / 1e9:,.1f} GFLOP)")
        blocks.append(f"[sampling: {n} stream(s) x {seconds:g} s, top-down: {', '.join(work)}]")
    if missing:
        blocks.append(f"total training time: unavailable (no benchmark rate for {', '.join(missing)}; "
                      "tf-ada bench train)")
    else:
        blocks.append(f"total training time (estimate): {total / 3600:.1f} h for {len(seen)} levels")
    rate = generation_rate(bench_dir, scale)
    estimate = (f"about {sampling / rate[0] / 3600:.1f} h at {rate[0] / 1e9:.2f} GFLOP/s, the cached generation rate "
                f"of {rate[1]}" if rate else "time unavailable: no generation benchmark (tf-ada bench generate)")
    blocks.append(f"sampling: {sampling / 1e12:,.2f} TFLOP of generation in all, {estimate}; the measures and the "
                  "page not included")
    return "\n\n".join(blocks)


def generation_rate(bench_dir: str, scale: str) -> Optional[tuple]:
    """(FLOP/s, source) of the fastest cached (in-place) generation benchmark in `bench_dir`
    (`tf-ada bench generate`) of a model at `scale` (else of any model), or None."""
    best, own = None, None
    for path in sorted(glob.glob(os.path.join(bench_dir, "generate-*.json"))):
        try:
            with open(path) as f:
                results = json.load(f).get("results", [])
        except (OSError, ValueError):
            continue
        for r in results:
            if not (r.get("in_place") and r.get("gflop_per_s")):
                continue
            found = (r["gflop_per_s"] * 1e9, f"{r.get('model')} (batch {r.get('batch')}; {path})")
            if best is None or found[0] > best[0]:
                best = found
            if str(r.get("model", "")).endswith(f"_{scale}") and (own is None or found[0] > own[0]):
                own = found
    return own or best


# --- main -----------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    from tf_ada.cli import HelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--scale", default="cpu", choices=configs.SCALES, help="model and training sizes (configs.py)")
    parser.add_argument("--data", help="audio shard folder (default: the built-in corpus)")
    parser.add_argument("--out", help="output folder (default runs/table3-SCALE)")
    parser.add_argument("--steps", type=int, help="override the steps of every level trained here (default: each's)")
    parser.add_argument("--stacks", default=",".join(STACKS), help="comma-separated stacks")
    parser.add_argument("--n", type=int, help="streams sampled per stack (default: tiny 2, cpu 8, paper 16)")
    parser.add_argument("--seconds", type=float, help="seconds per stream (default: tiny 0.25, cpu 8, paper 10)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of sampling (each level's seed is derived)")
    parser.add_argument("--table1", metavar="DIR", help="reproduce/table1.py's output folder: reuse its finished rows")
    parser.add_argument("--table2", metavar="DIR", help="reproduce/table2.py's output folder: reuse its finished rows")
    parser.add_argument("--ratings", nargs="+", metavar="FILE", help="ratings exported by the listening page's blind "
                        "mode (summarised per stack by tf_ada.ratings)")
    parser.add_argument("--key", help="the listening page's key.json (default OUT/listen/key.json)")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples of every measure's SE")
    parser.add_argument("--max-real", type=int, default=MAX_REAL, help="held-out excerpts for the measures")
    parser.add_argument("--skip-eval", action="store_true", help="train the levels without their periodic and final "
                        "held-out evaluations (faster; Table 3 reports no NLL)")
    parser.add_argument("--dry-run", action="store_true", help="print every level's parameters, receptive fields, "
                        "FLOPs, memory and estimated time, and each stack's sampling work; train nothing")
    parser.add_argument("--bench-dir", default=os.path.join("runs", "bench"),
                        help="benchmark JSON for --dry-run's time estimates (tf-ada bench train)")
    args = parser.parse_args(argv)
    rows = args.stacks.split(",")
    unknown = [r for r in rows if r not in STACKS]
    if unknown:
        parser.error(f"--stacks: unknown {', '.join(unknown)}; choose from {','.join(STACKS)}")
    for name in ("steps", "n"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be a positive integer, got {getattr(args, name)}")
    if args.seconds is not None and not args.seconds > 0:
        parser.error(f"--seconds must be > 0, got {args.seconds}")
    n = args.n or SAMPLING[args.scale][0]
    seconds = args.seconds or SAMPLING[args.scale][1]
    out = args.out or os.path.join("runs", f"table3-{args.scale}")
    if args.dry_run:
        reuse = None
        if args.table1 or args.table2:
            data_dir = args.data or os.path.join("runs", "corpus-tiny" if args.scale == "tiny" else "corpus", "data")
            reuse = {r: reused_levels(r, args.scale, data_dir, args.table1, args.table2, log=lambda *a: None)
                     for r in rows}
        print(dry_run(rows, args.scale, args.steps, n, seconds, args.bench_dir, reuse))
        return 0
    t0 = time.monotonic()
    os.makedirs(out, exist_ok=True)
    from reproduce.table1 import default_data
    data_dir = args.data or default_data(args.scale)
    log = print
    results, minutes = {}, {}
    for i, row in enumerate(rows, 1):
        log(f"table3: stack {row} ({i}/{len(rows)}): {stacks.PAPER_TABLE3[row][0]}")
        reuse = reused_levels(row, args.scale, data_dir, args.table1, args.table2, log=log)
        results[row] = run_stack(row, args.scale, data_dir, out, args.steps, n, seconds, args.seed, reuse, log=log,
                                 minutes=minutes, evaluate=not args.skip_eval)
    n_samples = int(round(seconds * stacks.SAMPLE_RATE))
    clips, pieces, names = real_excerpts(data_dir, n_samples, args.max_real)
    real_wavs = write_real_wavs(clips, names, n, os.path.join(out, "real"))
    meas = Measures(clips, pieces, args.bootstrap, args.seed, log=log)
    measures = {row: stack_measures(r, meas, log=log) for row, r in results.items()}
    baseline_path = os.path.join(out, "real", "baseline.json")
    baseline, baseline_key = None, dict(meas.key(), n=n)
    if os.path.exists(baseline_path):
        with open(baseline_path) as f:
            cached = json.load(f)
        baseline = cached if cached.get("key") == json.loads(json.dumps(baseline_key)) else None
    if baseline is None:
        log(f"table3: real-vs-real baseline ({n} excerpts against the rest)")
        baseline = dict(meas.baseline(n), key=baseline_key)
        fileio.atomic_write_json(baseline_path, baseline, default=float)
    page = listening_page(out, [r["samples_dir"] for r in results.values()], real_wavs, args.seed, seconds, log=log)
    human = None
    if args.ratings:
        from tf_ada import ratings
        try:
            human = ratings.summarize(args.ratings, args.key or os.path.join(out, "listen", "key.json"))
        except ratings.RatingsError as e:
            print(f"{parser.prog}: error: {e}", file=sys.stderr)
            return 2
    wall = (time.monotonic() - t0) / 60
    md = write_report(results, measures, baseline, args.scale, out, data_dir, n, seconds, args.seed, human, page,
                      wall_minutes=wall)
    print(md)
    blind = os.path.join(os.path.dirname(page), "blind", "index.html")
    print(f"table3: wrote {os.path.join(out, 'table3.md')}, table3.csv, table3.html, {page} and the blind page "
          f"{blind} (hand raters that folder alone) in {wall:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())

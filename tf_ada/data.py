"""Data preparation (recordings -> TFRecord shards + manifest.json) and tf.data readers.

Data flows one way: files -> `prepare` -> shards -> `excerpt_dataset` / `eval_dataset` -> models.
The same shard format holds 8-bit mu-law audio (paper, sec. 4 / app. B: 16 kHz, 8-bit mu-law)
and integer code sequences produced by an ADA (sec. 4.2-4.3: models trained on codes), so one
reader serves both.

Shard layout (`OUT/`):
  manifest.json                    what is in the folder: per file and per shard, totals per split
  {split}-{index:05d}.tfrecord     tf.train.Examples: `data` (raw bytes of `dtype`), `source`,
                                   `offset`, `length`; each record is one chunk of one recording

Shards are written whole and renamed into place before the manifest that lists them, so an
interrupted `prepare` resumes without duplicates: files listed in the manifest are done, anything
else is redone.
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import json
import os
import re
import time
import typing
from typing import Callable, Iterable, Optional

import numpy as np
import tensorflow as tf

from tf_ada import faults, fileio, ops
from tf_ada.audio import AUDIO_EXTENSIONS, AudioError, load_audio
from tf_ada.progress import Progress

MANIFEST = "manifest.json"
FORMAT = "tf-ada-shards/1"


class DataError(Exception):
    """A data folder that cannot be read as asked; the message names the folder and the problem."""


@dataclasses.dataclass(frozen=True)
class PrepareOptions:
    """Options of `prepare`.

    Attributes:
      sample_rate: output rate in Hz (paper: 16 kHz).
      eval_fraction: share of pieces held out (paper: 1%); at least one piece is held out
        whenever there are two or more.
      seed: split seed; the split is a deterministic function of (seed, piece name).
      min_seconds: recordings shorter than this are skipped as too short.
      silence_peak: recordings whose absolute peak is below this are skipped as all-silent.
      chunk_samples: samples per record (2**18 = 16.4 s at 16 kHz); training excerpts are cropped
        from single records.
      shard_samples: samples per shard before a new one starts (2**26 = 70 min at 16 kHz).
      normalize: scale each recording to a peak of 0.99 before mu-law encoding. Off by default:
        the paper keeps the recordings' own levels.
      split_overrides: {relative path or piece name: split} that takes precedence over the hash.
      pieces: {relative path: piece (work) identifier}: recordings of one work (movements) share
        a split and a cluster for standard errors; default: each file is its own piece (or the
        MAESTRO CSV's `canonical_title`).
      resplit: an OUT prepared with other split settings (seed, eval_fraction, overrides) is
        refused unless this is set; with it, OUT's own shards are removed and everything is
        prepared again with the new settings.
    """
    sample_rate: int = ops.SAMPLE_RATE
    eval_fraction: float = 0.01
    seed: int = 0
    min_seconds: float = 1.0
    silence_peak: float = 1e-3
    chunk_samples: int = 2 ** 18
    shard_samples: int = 2 ** 26
    normalize: bool = False
    split_overrides: Optional[dict] = None
    pieces: Optional[dict] = None
    resplit: bool = False


# --- manifest -----------------------------------------------------------------------------------
#
# manifest.json is read into a frozen `Manifest` (entries: `RecordingEntry`, `SkippedEntry`,
# `ShardEntry`, `SplitTotals`). Every record keeps the keys this version does not know in `extra`
# and writes them back, and an optional key is written back only if the file had it (even as
# null), so `Manifest.read(d).to_dict()` equals the file's JSON object.

_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


@dataclasses.dataclass(frozen=True)
class _Record:
    """Shared reading and writing of the manifest's JSON objects.

    Fields without a default are required; fields defaulting to None are optional and written
    only when set (or when the file held them as null, `nulls`); other keys live in `extra`."""
    extra: dict = dataclasses.field(default_factory=dict, kw_only=True, repr=False)
    nulls: frozenset = dataclasses.field(default=frozenset(), kw_only=True, repr=False, compare=False)

    _NESTED: typing.ClassVar[dict] = {}  # field -> record class of the values of a {name: object} field

    @classmethod
    def _own_fields(cls) -> list:
        return [f for f in dataclasses.fields(cls) if f.name not in ("extra", "nulls")]

    @classmethod
    def from_dict(cls, obj, where: str):
        """The record of one JSON object; `where` (the file, and the entry) prefixes every error.

        Raises:
          DataError: not an object, a required key missing, or a value of the wrong type.
        """
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected a JSON object, found {type(obj).__name__}")
        kw, nulls = {}, set()
        for f in cls._own_fields():
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if f.name not in obj:
                if required:
                    raise DataError(f"{where}: missing required key {f.name!r}")
                continue
            value = obj[f.name]
            if value is None:
                if required:
                    raise DataError(f"{where}: key {f.name!r} is null")
                nulls.add(f.name)
            else:
                value = cls._decode(f, value, where)
            kw[f.name] = value
        names = {f.name for f in cls._own_fields()}
        extra = {k: v for k, v in obj.items() if k not in names}
        return cls(**kw, extra=copy.deepcopy(extra), nulls=frozenset(nulls))

    @classmethod
    def _decode(cls, f, value, where: str):
        sub = cls._NESTED.get(f.name)
        if sub is not None:
            if not isinstance(value, dict):
                raise DataError(f"{where}: {f.name!r} is not a JSON object")
            return {k: sub.from_dict(v, f"{where}: {f.name}[{k!r}]") for k, v in value.items()}
        kind = str(f.type).replace("Optional[", "").rstrip("]")
        types = _TYPES.get(kind)
        if types is not None and (not isinstance(value, types) or (isinstance(value, bool) and kind != "bool")):
            raise DataError(f"{where}: {f.name!r} is {value!r}, not {'a number' if kind == 'float' else 'an ' + kind}")
        if kind.startswith("tuple"):
            if not isinstance(value, list):
                raise DataError(f"{where}: {f.name!r} is not a JSON list")
            return tuple(value)
        if kind.startswith("dict") and not isinstance(value, dict):
            raise DataError(f"{where}: {f.name!r} is not a JSON object")
        return copy.deepcopy(value)

    def to_dict(self) -> dict:
        """The JSON object of this record: its known keys, then `extra` (fresh copies throughout)."""
        out = copy.deepcopy(self.extra)
        for f in self._own_fields():
            value = getattr(self, f.name)
            if value is None:
                if f.name in self.nulls:
                    out[f.name] = None
                continue
            if f.name in self._NESTED:
                value = {k: v.to_dict() for k, v in value.items()}
            elif isinstance(value, tuple):
                value = list(value)
            else:
                value = copy.deepcopy(value)
            out[f.name] = value
        return out

    def updated(self, **changes):
        """A copy with `changes` set, as `dict.update` would on the JSON object: a known key's field
        is replaced (None is written as null), an unknown key goes to `extra`."""
        names = {f.name for f in self._own_fields()}
        known = {k: v for k, v in changes.items() if k in names}
        extra = dict(self.extra, **{k: v for k, v in changes.items() if k not in names})
        nulls = (set(self.nulls) - set(known)) | {k for k, v in known.items() if v is None}
        return dataclasses.replace(self, **known, extra=extra, nulls=frozenset(nulls))

    def without(self, *keys: str):
        """A copy without `keys` (as `dict.pop`): optional fields unset, extra keys dropped."""
        names = {f.name for f in self._own_fields()}
        known = {k: None for k in keys if k in names}
        extra = {k: v for k, v in self.extra.items() if k not in keys}
        return dataclasses.replace(self, **known, extra=extra, nulls=frozenset(self.nulls - set(keys)))


@dataclasses.dataclass(frozen=True)
class RecordingEntry(_Record):
    """One recording of `files` ({name: entry}, name relative to the source folder)."""
    split: str
    n_samples: int  # timesteps stored
    shard: str  # the shard file holding its records
    piece: Optional[str] = None  # its work: recordings of one piece share a split (default: the name)
    sha256: Optional[str] = None  # of the source file (code corpora: of the audio they were encoded from)
    source: Optional[str] = None  # the source file's absolute path (audio)
    duration_seconds: Optional[float] = None
    peak: Optional[float] = None  # only for recordings above full scale (clipped by mu-law)
    clipped_fraction: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class SkippedEntry(_Record):
    """One skipped file of `skipped` ({name: entry}): why it is not in the shards."""
    reason: str
    source: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class ShardEntry(_Record):
    """One shard file of `shards` ({file name: entry})."""
    split: str
    n_records: int
    n_samples: int


@dataclasses.dataclass(frozen=True)
class SplitTotals(_Record):
    """The totals of one split (`totals`: {split: totals})."""
    n_files: int
    n_samples: int
    hours: float


@dataclasses.dataclass(frozen=True)
class Manifest(_Record):
    """A data folder's manifest.json (format "tf-ada-shards/1"), as written by `ShardWriter`.

    Read one with `Manifest.read(folder)`; `to_dict()` gives the JSON object back unchanged. For
    callers not yet moved to attributes, `manifest["key"]` and `manifest.get("key")` still read
    the JSON form (a fresh dict each time); new code should use the attributes.
    """
    format: str
    kind: str  # "audio" (8-bit mu-law) or "codes"
    dtype: str  # storage dtype of the records
    n_classes: int
    sample_rate: float  # timesteps per second
    pad_value: int  # the silence value (mu-law 128 for audio, 0 for codes)
    chunk_samples: int  # timesteps per record
    files: dict[str, RecordingEntry]
    shards: dict[str, ShardEntry]
    skipped: dict[str, SkippedEntry] = dataclasses.field(default_factory=dict)
    totals: dict[str, SplitTotals] = dataclasses.field(default_factory=dict)
    splits: tuple[str, ...] = ()
    eval_split: str = "eval"  # the held-out split ("validation" for MAESTRO-style CSVs)
    corpus_hash: Optional[str] = None
    created: Optional[str] = None
    writing: Optional[tuple[str, ...]] = None  # shards being written (a killed writer's leftovers)
    # audio folders (`prepare`)
    source: Optional[str] = None  # the recordings folder
    encoding: Optional[str] = None
    seed: Optional[int] = None
    eval_fraction: Optional[float] = None
    split_settings: Optional[dict] = None
    planned_splits: Optional[dict] = None  # {name: split}, fixed the first time a file is seen
    # code corpora (`tf_ada.encode`)
    hop: Optional[int] = None
    source_checkpoint: Optional[str] = None
    source_step: Optional[int] = None
    source_run: Optional[str] = None
    source_experiment: Optional[str] = None
    source_weights: Optional[str] = None
    source_weights_sha256: Optional[str] = None
    source_data: Optional[str] = None
    source_kind: Optional[str] = None
    source_corpus_hash: Optional[str] = None
    source_sample_rate: Optional[float] = None

    _NESTED: typing.ClassVar[dict] = {"files": RecordingEntry, "shards": ShardEntry,
                                      "skipped": SkippedEntry, "totals": SplitTotals}

    @classmethod
    def _field(cls, name: str) -> dataclasses.Field:
        return next(f for f in cls._own_fields() if f.name == name)

    @classmethod
    def read(cls, data_dir: str) -> "Manifest":
        """The manifest of `data_dir`.

        Raises:
          DataError: naming the folder or file: no manifest.json, not valid JSON, another format,
            a required key missing or of the wrong type.
        """
        path = os.path.join(data_dir, MANIFEST)
        if not os.path.exists(path):
            raise DataError(f"{data_dir}: no {MANIFEST}; run `tf-ada prepare SRC {data_dir}` first")
        with open(path) as f:
            try:
                obj = json.load(f)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}: expected a JSON object, found {type(obj).__name__}")
        if obj.get("format") != FORMAT:
            raise DataError(f"{path}: format {obj.get('format')!r} is not {FORMAT!r}")
        return cls.from_dict(obj, path)

    @classmethod
    def of(cls, manifest, where: str = "manifest") -> "Manifest":
        """`manifest` as a `Manifest`: a Manifest, a manifest dict, or a folder holding manifest.json."""
        if isinstance(manifest, Manifest):
            return manifest
        if isinstance(manifest, str):
            return cls.read(manifest)
        return cls.from_dict(manifest, where)

    def split_files(self, split: str) -> dict[str, RecordingEntry]:
        """{name: entry} of the recordings of `split`, sorted by name."""
        return {n: e for n, e in sorted(self.files.items()) if e.split == split}

    # the JSON form, for callers that still read keys
    def __getitem__(self, key: str):
        return self.to_dict()[key]

    def get(self, key: str, default=None):
        return self.to_dict().get(key, default)

    def __contains__(self, key) -> bool:
        return key in self.to_dict()

    def keys(self):
        return self.to_dict().keys()


def load_manifest(data_dir: str) -> Manifest:
    """`Manifest.read(data_dir)` (the older name)."""
    return Manifest.read(data_dir)


def corpus_hash(manifest_or_dir) -> str:
    """The identity of a data set and its split: sha256 over (split, piece, file name, sha256 of the
    file's audio) of every recording in it, sorted. It depends on which works are in which split
    and on their audio content, not on how the manifest is formatted, so model cards that quote
    it stay valid when the manifest format changes. Code shards hash their source checkpoint's
    recordings the same way (their files carry the audio's sha256 where known).

    Args:
      manifest_or_dir: a `Manifest`, a folder holding manifest.json, or a manifest dict (only
        its `files` are read).

    Returns:
      64 hex digits.
    """
    if isinstance(manifest_or_dir, (Manifest, str)):
        files = Manifest.of(manifest_or_dir).files
    else:
        files = Manifest._decode(Manifest._field("files"), manifest_or_dir.get("files"), "manifest")
    h = hashlib.sha256()
    for name, info in sorted(files.items()):
        piece = name if info.piece is None and "piece" not in info.nulls else info.piece
        sha = "" if info.sha256 is None and "sha256" not in info.nulls else info.sha256
        row = "\t".join([info.split, str(piece), name, str(sha)])
        h.update(row.encode() + b"\n")
    return h.hexdigest()


def _write_json_atomic(path: str, obj) -> None:
    fileio.atomic_write_json(path, obj, sort_keys=True)


SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_split_name(split, where: str) -> str:
    """Returns `split` if it is a safe split name (letters, digits, `_`, `-`; it becomes part of
    shard file names), else raises a `DataError` that names `where` it came from."""
    if not isinstance(split, str) or not SPLIT_NAME.fullmatch(split):
        raise DataError(f"{where}: split name {split!r} is not allowed; use letters, digits, '_' and '-' "
                        f"(at most 64, starting with a letter or digit)")
    return split


def inside(root: str, relative: str, where: str) -> str:
    """`root/relative`, resolved (links followed), if it stays inside `root`; else a `DataError`
    naming `where` the path came from."""
    base = os.path.realpath(root)
    path = os.path.realpath(os.path.join(base, relative))
    if os.path.isabs(relative) or os.path.commonpath([base, path]) != base:
        raise DataError(f"{where}: path {relative!r} leads outside {root}; refused")
    return path


def _totals(manifest: Manifest) -> dict[str, SplitTotals]:
    counts: dict = {}
    for info in manifest.files.values():
        n_files, n_samples = counts.get(info.split, (0, 0))
        counts[info.split] = (n_files + 1, n_samples + info.n_samples)
    rate = manifest.sample_rate or 1
    return {split: SplitTotals(n_files=n_files, n_samples=n_samples, hours=round(n_samples / rate / 3600.0, 4))
            for split, (n_files, n_samples) in counts.items()}


# --- shard writing (audio and codes) -------------------------------------------------------------

class ShardWriter:
    """Writes integer sequences into split-wise TFRecord shards and keeps `manifest.json` current.

    Args:
      out_dir: destination folder (created; an existing manifest of the same kind is resumed).
      kind: "audio" (8-bit mu-law) or "codes" (integer code sequences).
      dtype: storage dtype, "uint8" for audio, "int16"/"int32" for codes.
      n_classes: number of symbols (256 for mu-law audio, K for codes).
      sample_rate: timesteps per second of the stored sequences (16000 for audio,
        16000 / hop for codes).
      chunk_samples, shard_samples: see `PrepareOptions`.
      meta: extra fields stored in the manifest (e.g. the ADA checkpoint that produced codes).

    `manifest` is the folder's `Manifest` as this writer has it (a new frozen one after each change).

    The writer holds `out_dir`'s lock (`fileio.FolderLock`) from construction to `close()`, so two
    jobs never write one folder. It only ever removes files it created: a shard is listed under
    `writing` in the manifest before its first byte is written, so a later writer removes the
    leftovers of a killed one by name; other files in the folder are never touched.

    Raises:
      fileio.FolderBusyError: another job is writing `out_dir`.
      DataError: `out_dir` holds shards of another kind.
    """

    def __init__(self, out_dir: str, kind: str, dtype: str, n_classes: int, sample_rate: float,
                 chunk_samples: int = 2 ** 18, shard_samples: int = 2 ** 26, meta: Optional[dict] = None):
        self.out_dir = out_dir
        self._lock = fileio.FolderLock(out_dir, f"writing {kind} shards")
        path = os.path.join(out_dir, MANIFEST)
        if os.path.exists(path):
            self.manifest = Manifest.read(out_dir)
            if self.manifest.kind != kind or self.manifest.dtype != dtype:
                raise DataError(f"{out_dir}: holds {self.manifest.kind}/{self.manifest.dtype} shards, "
                                f"cannot add {kind}/{dtype}")
        else:
            self.manifest = Manifest(
                format=FORMAT, kind=kind, dtype=dtype, n_classes=int(n_classes), sample_rate=sample_rate,
                pad_value=ops.mu_law_silence(n_classes) if kind == "audio" else 0,
                chunk_samples=int(chunk_samples), files={}, skipped={}, shards={}, totals={},
                eval_split="eval", created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        for shard in self.manifest.writing or ():  # shards of a killed run that never made the manifest
            for name in (shard, _partial_name(shard)):
                path = _own_shard_path(out_dir, name)
                if os.path.exists(path):
                    os.remove(path)
        self.manifest = self.manifest.without("writing")
        if meta:
            self.update(**meta)
        self.chunk_samples = int(self.manifest.chunk_samples)
        self.shard_samples = int(shard_samples)
        self._np_dtype = np.dtype(dtype)
        self._buffers: dict = {}  # split -> list of (name, info, array)

    def update(self, **fields) -> None:
        """Sets manifest fields (e.g. a code corpus's source); written with the next change."""
        self.manifest = self.manifest.updated(**fields)

    def is_done(self, name: str) -> bool:
        return name in self.manifest.files

    def add(self, name: str, split: str, values: np.ndarray, info: dict) -> None:
        """Queues one sequence (`[n_samples]` integers) for `split`; it is on disk after the next flush."""
        check_split_name(split, name)
        values = np.asarray(values)
        if values.size and (values.min() < 0 or values.max() >= self.manifest.n_classes):
            raise DataError(f"{name}: values outside [0, {self.manifest.n_classes})")
        if name in self.manifest.skipped:
            self.manifest = dataclasses.replace(
                self.manifest, skipped={k: v for k, v in self.manifest.skipped.items() if k != name})
        info = dict(info, split=split, n_samples=int(values.size))
        buf = self._buffers.setdefault(split, [])
        buf.append((name, info, values.astype(self._np_dtype)))
        if sum(v.size for _, _, v in buf) >= self.shard_samples:
            self._flush(split)

    def skip(self, name: str, info: dict) -> None:
        entry = SkippedEntry.from_dict(dict(info), f"{self.out_dir}: skipped {name!r}")
        self.manifest = dataclasses.replace(self.manifest, skipped={**self.manifest.skipped, name: entry})
        self._write_manifest()

    def _flush(self, split: str) -> None:
        buf = self._buffers.pop(split, [])
        if not buf:
            return
        index = sum(1 for s in self.manifest.shards.values() if s.split == split)
        shard = f"{split}-{index:05d}.tfrecord"
        final = os.path.join(self.out_dir, shard)
        if os.path.exists(final):
            raise DataError(f"{final}: exists but is not listed in {MANIFEST}; not overwriting it "
                            f"(move it away or choose another folder)")
        self.update(writing=(*(self.manifest.writing or ()), shard))
        self._write_manifest()
        tmp = os.path.join(self.out_dir, _partial_name(shard))
        n_records = 0
        with tf.io.TFRecordWriter(tmp) as writer:
            for name, _, values in buf:
                for offset in range(0, values.size, self.chunk_samples):
                    chunk = values[offset:offset + self.chunk_samples]
                    writer.write(_example(chunk, name, offset))
                    n_records += 1
        faults.point("shard-written")
        os.replace(tmp, final)
        writing = list(self.manifest.writing)
        writing.remove(shard)
        entry = ShardEntry(split=split, n_records=n_records, n_samples=int(sum(v.size for _, _, v in buf)))
        files = dict(self.manifest.files)
        for name, info, _ in buf:
            files[name] = RecordingEntry.from_dict(dict(info, shard=shard), f"{self.out_dir}: {name!r}")
        self.manifest = self.manifest.updated(files=files, shards={**self.manifest.shards, shard: entry},
                                              writing=tuple(writing))
        self._write_manifest()

    def _write_manifest(self) -> None:
        totals = _totals(self.manifest)
        self.manifest = self.manifest.updated(totals=totals, splits=tuple(sorted(totals)))
        self.manifest = self.manifest.updated(corpus_hash=corpus_hash(self.manifest))
        _write_json_atomic(os.path.join(self.out_dir, MANIFEST), self.manifest.to_dict())

    def reset(self) -> None:
        """Removes this folder's shards (those the manifest lists) and forgets every file, so that
        the folder is prepared again from scratch."""
        for shard in self.manifest.shards:
            path = _own_shard_path(self.out_dir, shard)
            if os.path.exists(path):
                os.remove(path)
        self._buffers = {}
        self.update(files={}, skipped={}, shards={}, planned_splits={})
        self._write_manifest()

    def close(self) -> Manifest:
        """Writes what is queued, the final manifest, and releases the folder; returns the manifest."""
        try:
            for split in list(self._buffers):
                self._flush(split)
            self._write_manifest()
        finally:
            self._lock.release()
        return self.manifest

    def abort(self) -> None:
        """Releases the folder without writing what is queued (it is redone by the next run)."""
        self._buffers = {}
        self._lock.release()


def _partial_name(shard: str) -> str:
    return f".{shard}.partial"


SHARD_NAME = re.compile(r"\.?[A-Za-z0-9][A-Za-z0-9_-]{0,63}-\d{5}\.tfrecord(\.partial)?")


def _own_shard_path(out_dir: str, name: str) -> str:
    """`out_dir/name` for a shard name this writer could have made; anything else in a manifest
    (which is untrusted) is refused before a file is removed."""
    if not isinstance(name, str) or not SHARD_NAME.fullmatch(name):
        raise DataError(f"{os.path.join(out_dir, MANIFEST)}: {name!r} is not a shard name; refusing to remove it")
    return os.path.join(out_dir, name)


def _example(chunk: np.ndarray, name: str, offset: int) -> bytes:
    feature = {
        "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[chunk.tobytes()])),
        "source": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()])),
        "offset": tf.train.Feature(int64_list=tf.train.Int64List(value=[offset])),
        "length": tf.train.Feature(int64_list=tf.train.Int64List(value=[chunk.size])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


# --- prepare: recordings -> shards ----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Recording:
    name: str  # path relative to the source folder: the key in the manifest
    path: str
    piece: str  # recordings of one piece always share a split
    split: Optional[str] = None  # fixed by a MAESTRO-style CSV, else None


def find_recordings(src: str) -> list[Recording]:
    """Lists the recordings under `src`.

    A MAESTRO-style folder (a CSV at the top with `audio_filename` and `split` columns) is read
    through its CSV: its splits are kept (train / validation / test) and files of one
    `canonical_title` share a piece. Otherwise every file with an audio extension below `src` is a
    recording and its own piece.

    Raises:
      DataError: `src` is not a folder; a CSV row's `audio_filename` leads outside `src` or its
        `split` is not a safe split name (the CSV is untrusted input).
    """
    if not os.path.isdir(src):
        raise DataError(f"{src}: not a folder")
    for name in sorted(os.listdir(src)):
        if name.lower().endswith(".csv"):
            csv_path = os.path.join(src, name)
            with open(csv_path, newline="") as f:
                reader = csv.DictReader(f)
                fields = set(reader.fieldnames or [])
                if {"audio_filename", "split"} <= fields:
                    recs = []
                    for line, row in enumerate(reader, start=2):
                        where = f"{csv_path}, line {line}"
                        recs.append(Recording(name=row["audio_filename"],
                                              path=inside(src, row["audio_filename"], where),
                                              piece=row.get("canonical_title") or row["audio_filename"],
                                              split=check_split_name(row["split"], where)))
                    return recs
    recs = []
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for f in sorted(files):
            if f.lower().endswith(AUDIO_EXTENSIONS):
                path = os.path.join(root, f)
                rel = os.path.relpath(path, src)
                recs.append(Recording(name=rel, path=path, piece=rel))
    return recs


def unit_hash(seed: int, text: str) -> float:
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def assign_splits(recs: Iterable[Recording], eval_fraction: float, seed: int,
                  overrides: Optional[dict] = None) -> dict:
    """Maps each recording's name to "train" or "eval", by piece, deterministically.

    A piece is held out when hash(seed, piece) < eval_fraction; if that leaves the eval split
    empty and there are at least two pieces, the piece with the smallest hash is held out.
    Recordings with a split of their own (MAESTRO CSV) or an override keep it.
    """
    recs = list(recs)
    overrides = overrides or {}
    pieces = sorted({r.piece for r in recs if r.split is None and r.name not in overrides and r.piece not in overrides})
    held = {p for p in pieces if unit_hash(seed, p) < eval_fraction}
    if not held and len(pieces) >= 2 and eval_fraction > 0:
        held = {min(pieces, key=lambda p: unit_hash(seed, p))}
    out = {}
    for r in recs:
        out[r.name] = (overrides.get(r.name) or overrides.get(r.piece) or r.split
                       or ("eval" if r.piece in held else "train"))
    return out


def prepare(src: str, out: str, options: PrepareOptions = PrepareOptions(),
            log: Callable[[str], None] = print) -> Manifest:
    """Turns a folder of recordings into shards of 8-bit mu-law audio (`tf-ada prepare SRC OUT`).

    Corrupt, empty, unreadable, too-short and all-silent files are skipped and listed under
    `skipped` in the manifest (with the reason); they never abort the run. Re-running skips files
    already in the manifest, so an interrupted run finishes without duplicates.

    OUT is locked while the job runs. An OUT prepared from another SRC is refused; one prepared
    with other split settings is refused unless `options.resplit`. OUT must not be SRC or inside it.

    Returns:
      The `Manifest` (also written to OUT/manifest.json).
    """
    src_real, out_real = os.path.realpath(src), os.path.realpath(out)
    if os.path.commonpath([src_real, out_real]) == src_real:
        raise DataError(f"{out}: the output folder is the source folder or inside it ({src}); "
                        "choose a folder outside it")
    recs = find_recordings(src)
    if not recs:
        raise DataError(f"{src}: no recordings ({', '.join(AUDIO_EXTENSIONS)}) found")
    if options.pieces:  # works named by the caller: they decide the split and the SE clusters
        recs = [dataclasses.replace(r, piece=options.pieces.get(r.name, r.piece)) for r in recs]
    for name, split in (options.split_overrides or {}).items():
        check_split_name(split, f"split override for {name!r}")
    settings = {"seed": options.seed, "eval_fraction": options.eval_fraction,
                "split_overrides_sha256": hashlib.sha256(
                    json.dumps(options.split_overrides or {}, sort_keys=True).encode()).hexdigest()}
    if options.pieces:
        settings["pieces_sha256"] = hashlib.sha256(json.dumps(options.pieces, sort_keys=True).encode()).hexdigest()
    writer = ShardWriter(out, kind="audio", dtype="uint8", n_classes=ops.QUANTIZATION_CHANNELS,
                         sample_rate=options.sample_rate, chunk_samples=options.chunk_samples,
                         shard_samples=options.shard_samples)
    try:
        _check_reuse(writer, src, settings, options.resplit, log)
        return _prepare_into(writer, src, recs, options, log)
    finally:
        writer.abort()


def _check_reuse(writer: ShardWriter, src: str, settings: dict, resplit: bool, log) -> None:
    """Refuses an OUT prepared from another source, or (unless `resplit`) with other split
    settings; with `resplit`, empties it. Records the source and settings in the writer's manifest."""
    manifest = writer.manifest
    out = writer.out_dir
    used = bool(manifest.files or manifest.skipped or manifest.shards)
    old_src = manifest.source
    if used and old_src and os.path.realpath(old_src) != os.path.realpath(src):
        raise DataError(f"{out}: holds recordings prepared from {old_src}, not {os.path.abspath(src)}; "
                        f"choose another output folder")
    legacy = (("seed", manifest.seed), ("eval_fraction", manifest.eval_fraction))  # before split_settings
    old = manifest.split_settings or {k: v for k, v in legacy if v is not None or k in manifest.nulls}
    changed = sorted(k for k in old if old[k] != settings.get(k))
    if used and changed:
        if not resplit:
            raise DataError(f"{out}: was prepared with other split settings ({', '.join(changed)}); "
                            f"re-run with the same settings to resume, or with --resplit to prepare it again")
        log(f"prepare: split settings changed ({', '.join(changed)}); preparing {out} again (--resplit)")
        writer.reset()
    writer.update(source=os.path.abspath(src), encoding="mu-law", split_settings=settings)


def _prepare_into(writer: ShardWriter, src: str, recs: list, options: PrepareOptions, log) -> Manifest:
    """The body of `prepare`: decodes what is not done yet into `writer`; returns the final manifest."""
    # the split is fixed the first time a file is seen, so resuming never moves a file
    planned = dict(writer.manifest.planned_splits or {})
    fresh = assign_splits(recs, options.eval_fraction, options.seed, options.split_overrides)
    for name, split in fresh.items():
        planned.setdefault(name, split)
    writer.update(planned_splits=planned, seed=options.seed, eval_fraction=options.eval_fraction)
    if any(r.split for r in recs):
        writer.update(eval_split="validation")
    todo = [r for r in recs if not writer.is_done(r.name)]
    log(f"prepare: {len(recs)} recordings under {src}; {len(recs) - len(todo)} already done, {len(todo)} to do")
    progress = Progress(len(todo), "prepare", unit="files", interval=5.0, stream=None)
    audio_seconds = 0.0
    for rec in todo:
        try:
            audio = load_audio(rec.path, options.sample_rate)
            n = audio.size
            peak = float(np.max(np.abs(audio))) if n else 0.0
            if n < options.min_seconds * options.sample_rate:
                raise AudioError(rec.path, f"too short ({n / options.sample_rate:.2f} s < {options.min_seconds} s)")
            if peak < options.silence_peak:
                raise AudioError(rec.path, f"all silent (peak {peak:.2e} < {options.silence_peak})")
            level = {}
            if options.normalize:
                audio = audio * (0.99 / peak)
            elif peak > 1.0:  # float recordings may exceed full scale; mu-law clips them at +-1
                level = {"peak": round(peak, 4), "clipped_fraction": round(float(np.mean(np.abs(audio) > 1.0)), 6)}
                log(f"prepare: warning: {rec.path} peaks at {peak:.2f}, above full scale; "
                    f"{100 * level['clipped_fraction']:.2f}% of its samples are clipped (use --normalize to scale it)")
            codes = ops.mu_law_encode(audio).numpy()
            writer.add(rec.name, planned[rec.name], codes, {
                "source": os.path.abspath(rec.path), "piece": rec.piece,
                "duration_seconds": round(n / options.sample_rate, 4), "sha256": fileio.sha256_file(rec.path), **level})
            faults.point("file-added")
            audio_seconds += n / options.sample_rate
        except AudioError as e:
            log(f"prepare: skipped {e.path}: {e.reason}")
            writer.skip(rec.name, {"source": os.path.abspath(rec.path), "reason": e.reason})
        progress.update(1, note=f"{audio_seconds / 60:.1f} min of audio")
    return writer.close()


def summary(manifest) -> str:
    """A short human-readable summary of a manifest (a `Manifest` or its dict): totals per split
    and skipped files."""
    manifest = Manifest.of(manifest)
    lines = [f"{manifest.kind} shards ({manifest.dtype}, {manifest.n_classes} classes, "
             f"{manifest.sample_rate} steps/s), {len(manifest.shards)} shard(s)"]
    for split, t in sorted(manifest.totals.items()):
        lines.append(f"  {split:>10}: {t.n_files:5d} files  {t.n_samples:>12,d} steps  {t.hours:.3f} h")
    if manifest.skipped:
        lines.append(f"  skipped {len(manifest.skipped)} file(s):")
        for name, info in sorted(manifest.skipped.items()):
            lines.append(f"    {name}: {info.reason}")
    return "\n".join(lines)


# --- readers ------------------------------------------------------------------------------------

def shard_paths(data_dir: str, split: str) -> list[str]:
    """The shard files of `split`, each checked to lie inside `data_dir` (the manifest is untrusted)."""
    manifest = Manifest.read(data_dir)
    where = os.path.join(data_dir, MANIFEST)
    paths = [inside(data_dir, s, where) for s, info in sorted(manifest.shards.items()) if info.split == split]
    if not paths:
        raise DataError(f"{data_dir}: no shards for split {split!r} (splits: {list(manifest.splits)})")
    return paths


def _parser(dtype: str):
    tf_dtype = tf.as_dtype(dtype)
    spec = {"data": tf.io.FixedLenFeature([], tf.string)}

    def parse(serialized):
        raw = tf.io.parse_single_example(serialized, spec)["data"]
        return tf.cast(tf.io.decode_raw(raw, tf_dtype), tf.int32)

    return parse


def excerpt_dataset(data_dir: str, n_samples: int, batch_size: int, split: str = "train",
                    left_context: int = 0, seed: Optional[int] = None, shuffle: bool = True,
                    repeat: bool = True, crops_per_record: int = 4) -> tf.data.Dataset:
    """Random training excerpts, shuffled, batched and prefetched.

    Args:
      data_dir: a folder written by `prepare` (audio) or `ShardWriter` (codes).
      n_samples: timesteps a model is trained on per excerpt.
      batch_size: excerpts per batch (global batch under a distribution strategy).
      split: which split to read.
      left_context: extra timesteps before the excerpt that a model asks for (e.g. its receptive
        field minus one, so every trained timestep sees a full context).
      seed: makes the order and the crops reproducible; None draws fresh randomness.
      crops_per_record: excerpts cut from each record read (at independent random offsets).

    Returns:
      Dataset of int32 `[batch_size, left_context + n_samples]`.
    """
    manifest = Manifest.read(data_dir)
    files = shard_paths(data_dir, split)
    need = int(left_context + n_samples)
    if need > manifest.chunk_samples:
        raise DataError(f"{data_dir}: excerpts of {need} steps are longer than its records "
                        f"({manifest.chunk_samples}); prepare with a larger chunk_samples")
    longest = max((f.n_samples for f in manifest.files.values() if f.split == split), default=0)
    if longest < need:
        raise DataError(f"{data_dir}: no {split!r} recording holds {need} steps (longest: {longest})")
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None)
    ds = ds.map(_parser(manifest.dtype), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.filter(lambda x: tf.shape(x)[0] >= need)
    if repeat:
        ds = ds.repeat()
    seeds = tf.data.Dataset.random(seed=seed).batch(2)

    def crops(record, pair):
        n_offsets = tf.shape(record)[0] - need + 1
        offsets = tf.random.stateless_uniform([crops_per_record], seed=pair, maxval=n_offsets, dtype=tf.int32)
        idx = offsets[:, None] + tf.range(need)[None, :]
        return tf.data.Dataset.from_tensor_slices(tf.gather(record, idx))

    ds = tf.data.Dataset.zip((ds, seeds)).flat_map(crops)
    if shuffle:
        ds = ds.shuffle(max(64, 4 * batch_size), seed=seed)
    ds = ds.batch(batch_size, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_dataset(data_dir: str, n_samples: int, batch_size: int, split: Optional[str] = None,
                 left_context: int = 0) -> tf.data.Dataset:
    """Deterministic evaluation windows that cover every timestep of `split` exactly once.

    Each record is cut into consecutive windows of `n_samples` targets. A window's input also
    carries `left_context` earlier steps of the same record; where the record has none (its
    start) or the window runs past its end, the input is padded with the silence value and the
    mask is 0, so a mask-weighted mean of per-step NLLs is the NLL of the split.

    Deviation: context does not cross the boundary between two records of one recording
    (chunk_samples apart); the first window of each record sees padded context instead.

    Returns:
      Dataset of (int32 `[B, left_context + n_samples]`, float32 mask `[B, n_samples]`); the
      last batch may be smaller.
    """
    manifest = Manifest.read(data_dir)
    split = split or manifest.eval_split
    files = shard_paths(data_dir, split)
    pad = int(manifest.pad_value)
    L, C = int(n_samples), int(left_context)

    def windows(record):
        n = tf.shape(record)[0]
        n_windows = (n + L - 1) // L
        padded = tf.concat([tf.fill([C], pad), record, tf.fill([n_windows * L - n], pad)], 0)
        starts = tf.range(n_windows) * L  # window j: targets [jL, jL + L), inputs [jL - C, jL + L)
        x = tf.gather(padded, starts[:, None] + tf.range(C + L)[None, :])
        mask = tf.cast(starts[:, None] + tf.range(L)[None, :] < n, tf.float32)
        return tf.data.Dataset.from_tensor_slices((x, mask))

    ds = tf.data.TFRecordDataset(files).map(_parser(manifest.dtype)).flat_map(windows)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def read_sequences(data_dir: str, split: str) -> list[np.ndarray]:
    """All records of a split as int32 numpy arrays (for analysis of small data sets)."""
    parse = _parser(Manifest.read(data_dir).dtype)
    return [parse(r).numpy() for r in tf.data.TFRecordDataset(shard_paths(data_dir, split))]

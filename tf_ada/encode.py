"""Code corpora (sec. 4.2-4.3): every recording of a prepared data folder encoded by an ADA, and the
second level rendered back to audio through the first.

    tf-ada encode --checkpoint RUN DATA OUT        # or --pretrained NAME
    codes = encode_recording(model, x)             # one whole recording, full context

`encode_corpus` writes the codes of every split of DATA (audio shards from `tf-ada prepare`, or
code shards, for a third level) into OUT in the shard format of `tf_ada.data` (`ShardWriter`,
kind "codes", int16), with the ADA's Polyak weights (`train.load_model`, `pretrained.load`).
OUT's manifest names the hop, the source checkpoint (run folder, checkpoint prefix and step, or the
pretrained name and its weights' sha256) and the source corpus hash; each file keeps its split,
piece (the work, for clustered standard errors) and audio sha256, so OUT's own `corpus_hash` equals
the source's once every recording is encoded. Running it again resumes: recordings already in
OUT's manifest are skipped (shards are written whole; the queued rest is redone), and an OUT
encoded by another checkpoint or from another data folder is refused.

Full context: a recording is encoded in chunks of `chunk_codes` codes, each cut with `margin`
samples of the recording on both sides (the encoder's one-sided receptive field, rounded up to
the hop); the codes of a chunk's middle depend on nothing beyond its margins, so the result equals
`ADA.encode` of the whole recording at once (tested). Only the recording's true edges see the
stack's zero padding. A recording whose length is not a multiple of the hop is padded at its end
with the data's pad value (silence for audio) to whole frames: ceil(T / hop) codes.
"""
from __future__ import annotations

import os
import time
import weakref
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from tf_ada import data, evaluation, fileio
from tf_ada.progress import LogStream, Progress

CODE_DTYPE = "int16"
DEFAULT_CHUNK_CODES = 4096  # codes per encoder call (32,768 audio samples at hop 8)
CODE_SHARD_SAMPLES = 2 ** 20  # codes per shard (8.7 min of audio at hop 8): resumes lose at most one


def margin(config) -> int:
    """Samples of context a chunk needs on each side: the encoder's one-sided receptive field
    (`ADAConfig.encoder_receptive_field`), rounded up to the hop (paper scale, hop 8: 512)."""
    hop = config.hop
    return -(-config.encoder_receptive_field // hop) * hop


_ENCODE_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _encode_fn(model):
    """`model.encode` as a tf.function, one per model (a weak reference: it does not keep the model)."""
    fn = _ENCODE_FNS.get(model)
    if fn is None:
        ref = weakref.ref(model)
        fn = tf.function(lambda x: ref().encode(x), reduce_retracing=True)
        _ENCODE_FNS[model] = fn
    return fn


def encode_recording(model, x, chunk_codes: int = DEFAULT_CHUNK_CODES, pad_value: int = 0) -> np.ndarray:
    """One whole recording -> its codes, with full context (see the module docstring).

    Args:
      model: an `ADA` (with the weights to encode with, e.g. the Polyak averages).
      x: int `[T]`, the recording (mu-law audio, or codes for a second-level ADA).
      chunk_codes: codes per encoder call; any value gives the same codes.
      pad_value: what pads the recording's end to whole frames (the data's `pad_value`).

    Returns:
      int32 `[ceil(T / hop)]`.
    """
    codes = frames_with_context(_encode_fn(model), x, model.config.hop, margin(model.config), chunk_codes, pad_value)
    return codes.astype(np.int32)


def frames_with_context(fn, x, hop: int, context: int, chunk_frames: int, pad_value: int = 0) -> np.ndarray:
    """Applies `fn` (int `[1, hop * n]` -> `[1, n, ...]`, e.g. `ADA.encode` or the encoder's
    queries) to a whole sequence in chunks of `chunk_frames` frames, each cut with `context`
    samples (a multiple of `hop`) of the sequence on both sides, and joins the chunks' frames.

    Args:
      x: int `[T]`; padded at its end with `pad_value` to ceil(T / hop) whole frames.

    Returns:
      `[ceil(T / hop), ...]` (numpy), equal to `fn` of the whole padded sequence whenever the
      output at a frame depends on at most `context` samples beyond the frame on each side.
    """
    if context % hop:
        raise ValueError(f"context {context} is not a multiple of the hop {hop}")
    x = np.asarray(x).astype(np.int32)
    n = -(-x.size // hop)
    if n * hop != x.size:
        x = np.concatenate([x, np.full(n * hop - x.size, pad_value, np.int32)])
    out = []
    for a in range(0, n, int(chunk_frames)):
        b = min(n, a + int(chunk_frames))
        lo, hi = max(0, a * hop - context), min(x.size, b * hop + context)
        y = np.asarray(fn(tf.constant(x[None, lo:hi])))[0]
        first = (a * hop - lo) // hop
        out.append(y[first:first + b - a])
    if not out:
        return np.asarray(fn(tf.constant(np.zeros([1, hop], np.int32))))[0][:0]
    return np.concatenate(out)


def source_of_run(run_dir: str):
    """(ADA with Polyak weights, its description for the manifest) from a Trainer run folder."""
    from tf_ada.train import restore_run
    model, experiment, step, prefix = restore_run(run_dir)
    return model, {"source_checkpoint": os.path.abspath(prefix) if prefix else None, "source_step": step,
                   "source_run": os.path.abspath(run_dir), "source_experiment": experiment.name,
                   "source_weights": "polyak"}


def source_of_pretrained(name: str):
    """(ADA with its shipped Polyak weights, its description for the manifest) from `tf_ada.pretrained`."""
    from tf_ada import pretrained
    model, experiment, card = pretrained.load(name)
    weights = os.path.join(pretrained.folder(name), pretrained.WEIGHTS)
    digest = fileio.sha256_file(weights)
    return model, {"source_checkpoint": f"pretrained:{name}", "source_step": card.get("steps"),
                   "source_weights_sha256": digest, "source_experiment": experiment.name,
                   "source_weights": "polyak"}


def encode_corpus(model, source: dict, data_dir: str, out_dir: str, chunk_codes: int = DEFAULT_CHUNK_CODES,
                  shard_samples: int = CODE_SHARD_SAMPLES, log: Callable[[str], None] = print,
                  record_steps: Optional[int] = None) -> data.Manifest:
    """Writes the codes of every recording of every split of `data_dir` into `out_dir` (resumable).

    Args:
      model: the `ADA` to encode with (its weights as they are: pass the Polyak averages).
      source: what the model is (`source_of_run` / `source_of_pretrained`); stored in the manifest,
        and checked against an `out_dir` being resumed.
      data_dir: a prepared data folder (audio, or codes of a lower level).
      out_dir: the code corpus (created, or resumed).
      record_steps: codes per record of the corpus (training excerpts are cut within records).
        Default: the input's records divided by the hop; a prior on codes of codes needs longer
        ones (e.g. its excerpt length; Table 3, `tf_ada.stacks`).

    Returns:
      OUT's `data.Manifest`.

    Raises:
      DataError: the data do not fit the model's input, or `out_dir` holds codes of another
        checkpoint or data folder.
    """
    from tf_ada.models.ada import ADA
    if not isinstance(model, ADA):
        raise data.DataError(f"{source.get('source_checkpoint')}: holds a {type(model).__name__}, not an ADA")
    manifest = data.Manifest.read(data_dir)
    cfg = model.config
    if manifest.n_classes != cfg.encoder.n_input_classes:
        raise data.DataError(f"{data_dir}: holds {manifest.n_classes}-class {manifest.kind}; the ADA's "
                             f"encoder reads {cfg.encoder.n_input_classes} classes")
    meta = dict(source, hop=cfg.hop, source_data=os.path.abspath(data_dir), source_kind=manifest.kind,
                source_corpus_hash=data.corpus_hash(manifest), source_sample_rate=manifest.sample_rate,
                encoding=f"codes of {source.get('source_experiment')} (hop {cfg.hop})")
    writer = data.ShardWriter(out_dir, kind="codes", dtype=CODE_DTYPE, n_classes=cfg.n_codes,
                              sample_rate=float(manifest.sample_rate) / cfg.hop,
                              chunk_samples=int(record_steps or max(1, int(manifest.chunk_samples) // cfg.hop)),
                              shard_samples=shard_samples)
    try:
        used = bool(writer.manifest.files)
        # the same model and the same corpus: a corpus is known by its hash (it may have moved, or
        # been reached through a copy of the tree), by its path where an older manifest has no hash
        old_hash = writer.manifest.source_corpus_hash
        keys = ("source_checkpoint", "hop") + (("source_corpus_hash",) if old_hash else ("source_data",))
        for key in keys:
            old = getattr(writer.manifest, key)
            if used and old is not None and old != meta[key]:
                raise data.DataError(f"{out_dir}: holds codes with {key} {old!r}, not {meta[key]!r}; "
                                     f"choose another output folder")
        writer.update(**meta, eval_split=manifest.eval_split)
        files = manifest.files
        todo = [n for n in sorted(files, key=lambda n: (files[n].shard, n)) if not writer.is_done(n)]
        rate = float(manifest.sample_rate)
        log(f"encode: {len(files)} recordings in {data_dir} ({', '.join(manifest.splits)}); "
            f"{len(files) - len(todo)} already encoded, {len(todo)} to do; hop {cfg.hop}, "
            f"chunks of {chunk_codes} codes with {margin(cfg)} samples of context each side")
        progress = Progress(sum(files[n].n_samples for n in todo) / rate, "encode", unit="s of input",
                            interval=10.0, stream=LogStream(log))
        t0, pad = time.monotonic(), int(manifest.pad_value)
        by_shard: dict = {}
        for n in todo:
            by_shard.setdefault(files[n].shard, []).append(n)
        for names in by_shard.values():
            recordings = evaluation.read_recordings(data_dir, names)
            for name in names:
                info = files[name]
                codes = encode_recording(model, recordings[name], chunk_codes, pad)
                writer.add(name, info.split, codes, {
                    "piece": name if info.piece is None else info.piece,
                    "sha256": "" if info.sha256 is None else info.sha256,
                    "duration_seconds": round(info.n_samples / rate, 4)})
                progress.update(info.n_samples / rate, note=name)
        out = writer.close()
    except BaseException:
        writer.abort()
        raise
    log(f"encode: {out_dir}: {sum(t.n_samples for t in out.totals.values()):,} codes of "
        f"{len(out.files)} recordings in {time.monotonic() - t0:.1f} s")
    return out




# --- the second level rendered to audio through the first ----------------------------------------

def render_through_levels(second, first, codes, seed: int = 0, reference: bool = True,
                          temperature: float = 1.0) -> dict:
    """Reconstructs first-level codes with a second-level ADA and renders them to audio with the
    first-level ADA's decoder (Table 2 text: codes -> first-level codes -> audio).

    Args:
      second: the second-level `ADA` (reads and predicts first-level codes).
      first: the first-level `ADA` the codes came from (its decoder renders audio).
      codes: int `[T]` first-level codes (T a multiple of the second level's hop).
      seed: sampling seed of both decoders.
      reference: also render the original first-level codes (the first level's own
        reconstruction), so that the second level's loss can be heard apart from the first's.

    Returns:
      {"second_codes" `[T / hop2]`, "first_codes" `[T]` (the reconstruction), "accuracy" (the share
      of first-level codes reconstructed exactly), "audio" mu-law int `[T * hop1]`, and with
      `reference` "reference_audio"}.
    """
    z1 = tf.convert_to_tensor(np.asarray(codes)[None], tf.int32)
    z2 = second.encode(z1)
    z1_hat = second.decode(z2, seed=seed, temperature=temperature, verbose=False)
    out = {"second_codes": z2[0].numpy(), "first_codes": z1_hat[0].numpy(),
           "accuracy": float(np.mean(z1_hat[0].numpy() == z1[0].numpy())),
           "audio": first.decode(z1_hat, seed=seed, temperature=temperature, verbose=False)[0].numpy()}
    if reference:
        out["reference_audio"] = first.decode(z1, seed=seed, temperature=temperature, verbose=False)[0].numpy()
    return out

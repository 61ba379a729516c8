"""Predictability profiles (sec. 4.2, Figure 2): how the NLL of a small predictor falls with its receptive field.

The predictor (sec. 4.2): a causal convolution of length r over the previous r symbols (one-hot
inputs: codes have no ordinal relation) -> ReLU -> linear -> ReLU -> linear -> softmax over the
symbols. r = 0 is the unigram entropy: the cross-entropy of the evaluation data under the
add-one-smoothed symbol frequencies of the training data.

Every point is meant to be a converged value of the data's predictability, not of the optimiser:

* Convergence test: every `eval_every` steps the NLL on a validation part of the training
  sequences (the last 10% of each, never the evaluation data) is measured. A plateau is
  `patience` consecutive measurements without an improvement of more than `tol` (1e-4 nats):
  training then goes on from the best weights at half the learning rate; the plateau after
  three halvings (`max_decays`), the fourth, ends it as converged, and the best weights are kept. A
  point that reaches `max_steps` first is reported as not converged (`converged` = False in the
  CSV). (The first version stopped at the first plateau at full rate: a warm-started r whose
  fresh Adam state knocked it off its start could stop after 500 steps having learnt nothing,
  which made the profile flat beyond r = 4, a property of the optimiser, not of the data.)
* Warm start (default): r is initialised from the trained predictor of the previous r, its taps
  moved to the same lags and the new, longer lags set to zero, so it starts out computing exactly
  the previous r's function; the validation NLL it starts from is the first "best", so a longer
  filter never ends worse on validation than the shorter one it can represent. Its learning rate
  ramps up linearly over the first `eval_every` steps (a fresh Adam's first updates move every
  weight by about the learning rate, whatever its gradient).
* Check: training NLL should be non-increasing in r. Each r > the first carries the paired
  difference to the previous r (`train_nll_change`, per-sequence sums, SE clustered by work) and
  `non_increasing`: "rises" when the rise exceeds two standard errors, else "ok".

Standard errors: `train_nll_se` and `eval_nll_se` are clustered by work (`groups` passed to
`profile`; by default each sequence is its own cluster), with the delta method of
`tf_ada.evaluation.ratio_estimate` over per-sequence NLL sums.

    python -m analysis.predictability --source audio --data runs/corpus/data --rf 0,1,2,4,8,16,32,64 --out runs/fig2
    python -m analysis.predictability --source codes --data runs/corpus/data \
        --checkpoint runs/table1-cpu/table1_1_2_cpu ...

The convolution over one-hot inputs is computed as a sum of r embedding lookups (one table per
tap), which is the same linear map as a length-r convolution of one-hot vectors but costs
r x hidden additions per step instead of r x classes x hidden multiply-adds.
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
import time
from typing import Iterable, Sequence

import numpy as np


def unigram_log_probs(train: Sequence[np.ndarray], n_classes: int) -> np.ndarray:
    """Log add-one-smoothed symbol frequencies of `train`, `[n_classes]` (the r = 0 model)."""
    counts = np.ones(n_classes)
    for s in train:
        counts += np.bincount(np.asarray(s).ravel(), minlength=n_classes)[:n_classes]
    return np.log(counts / counts.sum())


def unigram_nll(train: Sequence[np.ndarray], eval_: Sequence[np.ndarray], n_classes: int) -> tuple[float, float]:
    """(train, eval) cross-entropy in nats under add-one-smoothed training frequencies (r = 0)."""
    logp = unigram_log_probs(train, n_classes)
    mean = lambda seqs: float(-np.mean(np.concatenate([logp[np.asarray(s).ravel()] for s in seqs])))
    return mean(train), mean(eval_)


def _as_sequences(source) -> list[np.ndarray]:
    """`[N, T]` array, list of 1-D arrays, or a tf.data source of excerpts -> list of int32 arrays."""
    if isinstance(source, np.ndarray):
        return [np.asarray(s, np.int32) for s in (source if source.ndim == 2 else source[None])]
    if hasattr(source, "as_numpy_iterator"):
        out = []
        for item in source.as_numpy_iterator():
            item = item[0] if isinstance(item, tuple) else item
            out += [np.asarray(s, np.int32) for s in np.atleast_2d(item)]
        return out
    return [np.asarray(s, np.int32).ravel() for s in source]


class _Windows:
    """Random windows of r + n_targets symbols from sequences of at least that length."""

    def __init__(self, seqs, length, rng):
        self.seqs = [s for s in seqs if len(s) >= length]
        if not self.seqs:
            raise ValueError(f"no sequence holds {length} symbols (receptive field + targets)")
        self.length, self.rng = length, rng
        sizes = np.array([len(s) - length + 1 for s in self.seqs], np.float64)
        self.p = sizes / sizes.sum()

    def batch(self, n):
        idx = self.rng.choice(len(self.seqs), size=n, p=self.p)
        out = np.empty((n, self.length), np.int32)
        for i, k in enumerate(idx):
            start = self.rng.integers(0, len(self.seqs[k]) - self.length + 1)
            out[i] = self.seqs[k][start:start + self.length]
        return out


def _all_windows(seqs, r, n_targets):
    """Deterministic windows covering every position with a full context exactly once:
    ([M, r + n_targets] symbols, [M, n_targets] mask, [M] index of the window's sequence)."""
    xs, masks, units = [], [], []
    for i, s in enumerate(seqs):
        n_pos = len(s) - r
        if n_pos <= 0:
            continue
        for start in range(0, n_pos, n_targets):
            take = min(n_targets, n_pos - start)
            w = np.zeros(r + n_targets, np.int32)
            w[:r + take] = s[start:start + r + take]
            m = np.zeros(n_targets, np.float32)
            m[:take] = 1
            xs.append(w)
            masks.append(m)
            units.append(i)
    if not xs:
        raise ValueError(f"no sequence is longer than the receptive field {r}")
    return np.stack(xs), np.stack(masks), np.array(units, np.int64)


def _build(r, n_classes, hidden, seed, init=None):
    """The predictor's weights; `init` (the trained weights of a smaller r) warm-starts them:
    tap j reads lag r - j, so the old taps move to the last positions and the new lags start at 0."""
    import tensorflow as tf
    if init is not None:
        old = init["taps"]
        taps = np.zeros((r, n_classes, hidden), np.float32)
        taps[r - old.shape[0]:] = old
        return {k: tf.Variable(taps if k == "taps" else v, name=k) for k, v in init.items()}
    rng = tf.random.Generator.from_seed(seed)
    scale = 1.0 / math.sqrt(r)
    return {
        "taps": tf.Variable(rng.uniform([r, n_classes, hidden], -scale, scale), name="taps"),
        "b1": tf.Variable(tf.zeros([hidden])),
        "w2": tf.Variable(rng.uniform([hidden, hidden], -1, 1) / math.sqrt(hidden)),
        "b2": tf.Variable(tf.zeros([hidden])),
        "w3": tf.Variable(rng.uniform([hidden, n_classes], -1, 1) / math.sqrt(hidden)),
        "b3": tf.Variable(tf.zeros([n_classes])),
    }


def _logits(params, x, r, n_targets, chunk_floats: int = 1 << 24):
    """x int32 `[B, r + n_targets]` -> logits `[B, n_targets, n_classes]` for x[:, r:].

    The tap sum h[b, t] = sum_j taps[j, x[b, t + j]] is one gather from the taps flattened to
    `[r * n_classes, hidden]` at index j * n_classes + x[b, t + j], summed over j; taps are taken
    in chunks so that a gathered block holds at most `chunk_floats` values. (A loop of one gather
    per tap made each tap's gradient a dense `[r, n_classes, hidden]` tensor: O(r^2) per step.)"""
    import tensorflow as tf
    taps = params["taps"]
    n_classes, hidden = taps.shape[1], taps.shape[2]
    frames = tf.signal.frame(x[:, :r + n_targets - 1], r, 1, axis=1)  # [B, n_targets, r]: x[b, t + j]
    batch = tf.shape(x)[0]
    per_tap = 64 * n_targets * hidden  # floats per tap for a batch of 64 windows (a bound, not exact)
    chunk = max(1, min(r, chunk_floats // per_tap))
    table = tf.reshape(taps, [r * n_classes, hidden])  # one reshape: its gradient is one dense tensor
    h = tf.zeros([batch, n_targets, hidden])
    for j0 in range(0, r, chunk):
        j1 = min(r, j0 + chunk)
        idx = frames[:, :, j0:j1] + tf.range(j0, j1, dtype=frames.dtype) * n_classes
        h += tf.reduce_sum(tf.gather(table, idx), axis=2)
    h = tf.nn.relu(h + params["b1"])
    h = tf.nn.relu(tf.matmul(h, params["w2"]) + params["b2"])
    return tf.matmul(h, params["w3"]) + params["b3"]


class ConvergenceTest:
    """The profile models' convergence test (module docstring), apart from the training: feed it
    each validation NLL; it answers "improved" (keep these weights), "wait", "halve" (a plateau:
    `rate` is now half; go on from the best weights) or "converged" (the plateau after
    `max_decays` halvings; `converged` is then True)."""

    def __init__(self, start_nll: float, rate: float, patience: int = 5, tol: float = 1e-4, max_decays: int = 3):
        self.best, self.rate, self.patience, self.tol, self.max_decays = start_nll, rate, patience, tol, max_decays
        self.bad, self.decays, self.converged = 0, 0, False

    def observe(self, nll: float) -> str:
        if nll < self.best - self.tol:
            self.best, self.bad = nll, 0
            return "improved"
        self.bad += 1
        if self.bad < self.patience:
            return "wait"
        if self.decays == self.max_decays:
            self.converged = True
            return "converged"
        self.decays, self.bad, self.rate = self.decays + 1, 0, self.rate / 2
        return "halve"


def _fit_one(train, valid, eval_, r, n_classes, hidden, n_targets, batch_size, learning_rate, max_steps,
             eval_every, patience, seed, log, init=None, tol=1e-4, max_decays=3, first_target=None):
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    windows = _Windows(train, r + n_targets, rng)
    params = _build(r, n_classes, hidden, seed, init)
    variables = list(params.values())
    opt = tf.keras.optimizers.Adam(learning_rate)  # its learning_rate is a variable the step reads
    lr = opt.learning_rate

    @tf.function(reduce_retracing=True)
    def train_step(x):
        with tf.GradientTape() as tape:
            logits = _logits(params, x, r, n_targets)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=x[:, r:], logits=logits))
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    @tf.function(reduce_retracing=True)
    def nll_sums(x, mask):
        logits = _logits(params, x, r, n_targets)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=x[:, r:], logits=logits)
        return tf.reduce_sum(nll * mask, 1), tf.reduce_sum(mask, 1)

    def unit_sums(prepared, n_units, size=64):
        """(NLL sum, count) per sequence `[n_units]` over every position with a full context."""
        x, m, unit = prepared
        sums, counts = np.zeros(n_units), np.zeros(n_units)
        for i in range(0, len(x), size):
            s_, c_ = nll_sums(x[i:i + size], m[i:i + size])
            np.add.at(sums, unit[i:i + size], s_.numpy())
            np.add.at(counts, unit[i:i + size], c_.numpy())
        return sums, counts

    def mean_nll(prepared, n_units):
        sums, counts = unit_sums(prepared, n_units)
        return float(sums.sum() / max(counts.sum(), 1.0))

    # measured on the targets from position `first_target` of every sequence (the largest r of the
    # profile): the same positions for every r, so that profiles compare like with like
    skip = 0 if first_target is None else first_target - r
    valid_w, train_w, eval_w = (_all_windows([q[skip:] for q in seqs], r, n_targets) for seqs in (valid, train, eval_))
    # the starting point is the first "best": a warm-started r never ends worse on validation
    test = ConvergenceTest(mean_nll(valid_w, len(valid)), learning_rate, patience, tol, max_decays)
    best_values, step, t0 = [v.numpy() for v in variables], 0, time.monotonic()
    while step < max_steps and not test.converged:
        for _ in range(eval_every):
            if init is not None and step < eval_every:  # warm start: a fresh Adam's first steps move
                lr.assign(test.rate * (step + 1) / eval_every)  # every weight by ~lr; ramp up instead
            train_step(windows.batch(batch_size))
            step += 1
        action = test.observe(mean_nll(valid_w, len(valid)))
        if action == "improved":
            best_values = [var.numpy() for var in variables]
        elif action == "halve":  # go on from the best weights at the new rate
            lr.assign(test.rate)
            for var, val in zip(variables, best_values):
                var.assign(val)
    for var, val in zip(variables, best_values):
        var.assign(val)
    best, converged, decays = test.best, test.converged, test.decays
    train_units, eval_units = unit_sums(train_w, len(train)), unit_sums(eval_w, len(eval_))
    result = {"train_nll": float(train_units[0].sum() / train_units[1].sum()),
              "eval_nll": float(eval_units[0].sum() / eval_units[1].sum()), "valid_nll": best, "steps": step,
              "converged": converged, "lr_halvings": decays, "seconds": time.monotonic() - t0,
              "units": {"train": train_units, "eval": eval_units},
              "weights": {k: v.numpy() for k, v in params.items()}}
    log(f"profile: r={r:5d} train {result['train_nll']:.4f} eval {result['eval_nll']:.4f} nats "
        f"({step} steps, {'converged' if converged else 'step limit'}, {decays} rate halvings, "
        f"{result['seconds']:.0f}s)")
    return result


def _unigram_units(train, fit, eval_, n_classes, first_target: int = 0):
    """Per-sequence (NLL sum, count) of `fit` and `eval_` from position `first_target` on, under
    add-one-smoothed frequencies of `train`."""
    logp = unigram_log_probs(train, n_classes)
    sums = lambda seqs: (np.array([-logp[np.asarray(s)].sum() for s in seqs]), np.array([float(len(s)) for s in seqs]))
    return sums([q[first_target:] for q in fit]), sums([q[first_target:] for q in eval_])


def non_increasing(results: list[dict], units: list[dict], groups) -> None:
    """Adds to each result after the first: train_nll_change (this r minus the previous r, on the
    same training sequences), its SE clustered by `groups`, and non_increasing: "rises" when the
    change exceeds two SEs upwards (a longer filter can represent every shorter one, so a rise
    means the optimiser, not the data), "ok" otherwise."""
    from tf_ada import evaluation as ev
    for i in range(1, len(results)):
        a = ev.ratio_estimate(*units[i]["train"], groups)
        b = ev.ratio_estimate(*units[i - 1]["train"], groups)
        d = a - b
        results[i]["train_nll_change"], results[i]["train_nll_change_se"] = d.value, d.se
        results[i]["non_increasing"] = "rises" if ev.verdict(d.value, d.se, 1) == ev.HOLDS else "ok"


def profile(train_sequences, eval_sequences, receptive_fields: Iterable[int], n_classes: int, *,
            hidden: int = 128, n_targets: int = 64, batch_size: int = 32, learning_rate: float = 3e-3,
            max_steps: int = 20000, eval_every: int = 100, patience: int = 5, valid_fraction: float = 0.1,
            seed: int = 0, log=print, warm_start: bool = True, tol: float = 1e-4,
            train_groups=None, eval_groups=None, return_units: bool = False) -> list[dict]:
    """NLL of the sec. 4.2 predictor against its receptive field.

    Args:
      train_sequences, eval_sequences: integer sequences (`[N, T]` numpy arrays, lists of 1-D
        arrays, or tf.data sources of excerpts) with values in [0, n_classes).
      receptive_fields: the r values (0 = unigram entropy), in increasing order for warm starts.
      n_classes: alphabet size (256 for mu-law audio, K for codes).
      hidden: width of the two hidden layers. n_targets: targets per training window.
      max_steps, eval_every, patience, tol: the convergence test (module docstring) on the
        validation part of the training sequences (the last `valid_fraction` of each).
      warm_start: initialise each r from the previous r's trained predictor (module docstring).
      train_groups, eval_groups: a work label per sequence, for standard errors clustered by work
        (default: every sequence its own cluster).
      return_units: also return, per r, the per-sequence (NLL sum, count) of train and eval.

    Returns:
      One dict per r: receptive_field, train_nll, train_nll_se, eval_nll, eval_nll_se (nats per
      timestep over the same positions for every r: those with the largest r's full receptive field
      of context, so that r's are compared on the same targets; train over the
      training sequences less their validation part), steps, converged, and from the second r
      on train_nll_change, train_nll_change_se, non_increasing. With return_units: (results,
      units).
    """
    from tf_ada import evaluation as ev
    train = _as_sequences(train_sequences)
    eval_ = _as_sequences(eval_sequences)
    train_groups = np.arange(len(train)) if train_groups is None else np.asarray(train_groups)
    eval_groups = np.arange(len(eval_)) if eval_groups is None else np.asarray(eval_groups)
    cut = [int(len(s) * (1 - valid_fraction)) for s in train]
    fit, valid = [s[:c] for s, c in zip(train, cut)], [s[c:] for s, c in zip(train, cut)]
    receptive_fields = [int(r) for r in receptive_fields]  # read twice below (an iterator would be spent)
    results, units, weights = [], [], None
    first_target = max(receptive_fields)  # every r is measured on the same positions
    for r in receptive_fields:
        r = int(r)
        if r == 0:
            tr, evu = _unigram_units(train, fit, eval_, n_classes, first_target)
            res = {"receptive_field": 0, "steps": 0, "converged": True}
            units.append({"train": tr, "eval": evu})
            log(f"profile: r=    0 train {tr[0].sum() / tr[1].sum():.4f} eval {evu[0].sum() / evu[1].sum():.4f} "
                "nats (unigram entropy)")
        else:
            fitted = _fit_one(fit, [v for v in valid if len(v) > first_target], eval_, r, n_classes, hidden, n_targets,
                              batch_size, learning_rate, max_steps, eval_every, patience, seed, log,
                              init=weights if warm_start else None, tol=tol, first_target=first_target)
            weights = fitted["weights"]
            res = {"receptive_field": r, "steps": fitted["steps"], "converged": fitted["converged"]}
            units.append(fitted["units"])
        for split, groups in (("train", train_groups), ("eval", eval_groups)):
            est = ev.ratio_estimate(*units[-1][split], groups)
            res[f"{split}_nll"], res[f"{split}_nll_se"] = est.value, est.se
        results.append(res)
    non_increasing(results, units, train_groups)
    for res in results:
        if res.get("non_increasing") == "rises":
            log(f"profile: r={res['receptive_field']} train NLL rises by {res['train_nll_change']:.4f} "
                f"+- {res['train_nll_change_se']:.4f} over the previous r (more than 2 SE): not converged")
    return (results, units) if return_units else results


# --- sources ----------------------------------------------------------------------------------------

def recording_excerpts(data_dir: str, max_timesteps: int, split: str, min_chunk: int = 32768):
    """About `max_timesteps` of a split as contiguous excerpts from the starts of evenly spaced
    recordings (in name order), at least `min_chunk` steps each: ([excerpt], [its work]). Only
    the chosen recordings are read."""
    from tf_ada import data, evaluation
    files = list(data.Manifest.read(data_dir).split_files(split).items())
    if not files:
        raise data.DataError(f"{data_dir}: split {split!r} holds no recordings")
    total = sum(int(f.n_samples) for _, f in files)
    if total <= max_timesteps:
        picks, per = list(range(len(files))), None
    else:
        n_chunks = max(1, min(len(files), max_timesteps // min_chunk))
        per = max_timesteps // n_chunks
        picks = sorted(set(np.linspace(0, len(files) - 1, n_chunks).round().astype(int).tolist()))
    chosen = [files[i] for i in picks]
    recs = evaluation.read_recordings(data_dir, [n for n, _ in chosen])
    seqs = [recs[n][:per].astype(np.int32) for n, _ in chosen]
    return seqs, [str(f.piece or n) for n, f in chosen]


def audio_sequences(data_dir: str, max_timesteps: int, split: str, with_works: bool = False):
    """Up to `max_timesteps` of mu-law audio of a split (`recording_excerpts`); with_works: also
    the work of each sequence (for standard errors clustered by work)."""
    seqs, works = recording_excerpts(data_dir, max_timesteps, split)
    return (seqs, works) if with_works else seqs


def _spread(seqs, max_timesteps, min_chunk: int = 32768):
    """About `max_timesteps` in contiguous chunks of at least `min_chunk` steps from evenly spaced
    sequences (long chunks keep every receptive field's context inside one chunk)."""
    total = sum(len(s) for s in seqs)
    if total <= max_timesteps:
        return seqs
    n_chunks = max(1, min(len(seqs), max_timesteps // min_chunk))
    per = max_timesteps // n_chunks
    picks = np.linspace(0, len(seqs) - 1, n_chunks).round().astype(int)
    return [seqs[i][:per] for i in sorted(set(picks.tolist()))]


def code_sequences(data_dir: str, checkpoint: str, max_timesteps: int, split: str,
                   chunk_samples: int = 2 ** 16, with_works: bool = False):
    """Codes of a split's audio under a trained ADA (the paper uses model #1.2): (sequences, K,
    config), and the work of each sequence when `with_works`."""
    from tf_ada.models.ada import ADA
    from tf_ada.train import load_model
    model, _ = load_model(checkpoint)
    if not isinstance(model, ADA):
        raise ValueError(f"{checkpoint}: not an ADA run folder")
    hop = model.config.hop
    audio, works = recording_excerpts(data_dir, max_timesteps * hop, split)
    out, kept = [], []
    for s, work in zip(audio, works):
        codes = []
        usable = len(s) // hop * hop
        for start in range(0, usable, chunk_samples):
            piece = s[start:min(start + chunk_samples, usable)]
            codes.append(model.encode(piece[None]).numpy()[0])
        if codes:
            out.append(np.concatenate(codes))
            kept.append(work)
    if with_works:
        return out, model.config.n_codes, model.config, kept
    return out, model.config.n_codes, model.config


# --- output -----------------------------------------------------------------------------------------

CSV_FIELDS = ["receptive_field", "train_nll", "train_nll_se", "eval_nll", "eval_nll_se", "steps", "converged",
              "train_nll_change", "train_nll_change_se", "non_increasing"]


def write_csv(path: str, results: list[dict]) -> None:
    """Writes a profile (one row per receptive field) atomically."""
    from tf_ada import fileio
    rows = io.StringIO()
    w = csv.DictWriter(rows, fieldnames=CSV_FIELDS)
    w.writeheader()
    for r in results:
        w.writerow({k: r.get(k, "") for k in w.fieldnames})
    fileio.atomic_write_text(path, rows.getvalue())


def read_csv(path: str) -> list[dict]:
    """Rows of `write_csv` (older files without the SE columns read too)."""
    out = []
    with open(path) as f:
        for row in csv.DictReader(f):
            r = {"receptive_field": int(row["receptive_field"])}
            for k in ("train_nll", "train_nll_se", "eval_nll", "eval_nll_se",
                      "train_nll_change", "train_nll_change_se"):
                if row.get(k) not in (None, ""):
                    r[k] = float(row[k])
            for k in ("steps",):
                if row.get(k) not in (None, ""):
                    r[k] = int(row[k])
            if row.get("converged") not in (None, ""):
                r["converged"] = row["converged"] == "True"
            if row.get("non_increasing"):
                r["non_increasing"] = row["non_increasing"]
            out.append(r)
    return out


def receptive_fields(text: str) -> list[int]:
    """argparse type of --rf: comma-separated receptive fields, each an integer >= 0; returned sorted
    and without repeats (each r is warm-started from the one before it)."""
    try:
        rfs = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}") from None
    if any(rf < 0 for rf in rfs):
        raise argparse.ArgumentTypeError(f"receptive fields must be 0 or more, got {text!r}")
    return sorted(set(rfs))


def main(argv=None, prog: str = "python -m analysis.predictability") -> int:
    from tf_ada.cli import ArgumentParser, positive_int
    parser = ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--source", choices=["audio", "codes"], required=True,
                        help="profile mu-law audio, or the codes an ADA (--checkpoint) gives it")
    parser.add_argument("--data", required=True, help="audio shard folder (tf-ada prepare)")
    parser.add_argument("--checkpoint", help="ADA run folder whose codes to profile (--source codes)")
    parser.add_argument("--rf", type=receptive_fields, default="0,1,2,4,8,16,32,64,128,256,512,1024",
                        help="comma-separated receptive fields r of the predictor")
    parser.add_argument("--out", required=True, help="output folder (profile_SOURCE.csv and .png)")
    parser.add_argument("--max-train-timesteps", type=positive_int, default=2_000_000,
                        help="training symbols read from the train split")
    parser.add_argument("--max-eval-timesteps", type=positive_int, default=200_000,
                        help="evaluation symbols read from the held-out split")
    parser.add_argument("--hidden", type=positive_int, default=128, help="the predictor's hidden size")
    parser.add_argument("--patience", type=positive_int, default=5,
                        help="validation checks (every 100 steps) without a 1e-4-nat gain that make a plateau")
    parser.add_argument("--max-steps", type=positive_int, default=20000,
                        help="training steps per r before giving up on the convergence test")
    args = parser.parse_args(argv)
    from tf_ada import data
    os.makedirs(args.out, exist_ok=True)
    eval_split = data.Manifest.read(args.data).eval_split
    marker = None
    if args.source == "audio":
        train = audio_sequences(args.data, args.max_train_timesteps, "train")
        eval_ = audio_sequences(args.data, args.max_eval_timesteps, eval_split)
        n_classes = 256
    else:
        if not args.checkpoint:
            parser.error("--source codes needs --checkpoint (an ADA run folder, e.g. Table 1 row 1.2)")
        train, n_classes, cfg = code_sequences(args.data, args.checkpoint, args.max_train_timesteps, "train")
        eval_, _, _ = code_sequences(args.data, args.checkpoint, args.max_eval_timesteps, eval_split)
        marker = cfg.encoder_receptive_field_codes
    rfs = args.rf
    results = profile(train, eval_, rfs, n_classes, hidden=args.hidden, max_steps=args.max_steps,
                      patience=args.patience)
    csv_path = os.path.join(args.out, f"profile_{args.source}.csv")
    write_csv(csv_path, results)
    from analysis.plot_profiles import plot_profile
    png = os.path.join(args.out, f"profile_{args.source}.png")
    plot_profile(results, png, title=f"Predictability of {args.source}", marker=marker)
    print(f"predictability: wrote {csv_path} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

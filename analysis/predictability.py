"""Predictability profiles (sec. 4.2, Figure 2): how the NLL of a small predictor falls with its receptive field.

The predictor (sec. 4.2): a causal convolution of length r over the previous r symbols (one-hot
inputs: codes have no ordinal relation) -> ReLU -> linear -> ReLU -> linear -> softmax over the
symbols. r = 0 is the unigram entropy: the cross-entropy of the evaluation data under the
add-one-smoothed symbol frequencies of the training data.

Every point is a converged value: training stops early when the NLL on a validation part of the
training sequences (10%, never the evaluation data) has not improved for `patience` evaluations,
and the best weights are kept.

    python -m analysis.predictability --source audio --data runs/corpus/data --rf 0,1,2,4,8,16,32,64 --out runs/fig2
    python -m analysis.predictability --source codes --data runs/corpus/data --checkpoint runs/table1-cpu/table1_1_2_cpu ...

The convolution over one-hot inputs is computed as a sum of r embedding lookups (one table per
tap), which is the same linear map as a length-r convolution of one-hot vectors but costs
r x hidden additions per step instead of r x classes x hidden multiply-adds.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from typing import Iterable, Sequence

import numpy as np


def unigram_nll(train: Sequence[np.ndarray], eval_: Sequence[np.ndarray], n_classes: int) -> tuple[float, float]:
    """(train, eval) cross-entropy in nats under add-one-smoothed training frequencies (r = 0)."""
    counts = np.ones(n_classes)
    for s in train:
        counts += np.bincount(np.asarray(s).ravel(), minlength=n_classes)[:n_classes]
    logp = np.log(counts / counts.sum())
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
    ([M, r + n_targets] symbols, [M, n_targets] mask)."""
    xs, masks = [], []
    for s in seqs:
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
    if not xs:
        raise ValueError(f"no sequence is longer than the receptive field {r}")
    return np.stack(xs), np.stack(masks)


def _build(r, n_classes, hidden, seed):
    import tensorflow as tf
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


def _logits(params, x, r, n_targets):
    """x int32 `[B, r + n_targets]` -> logits `[B, n_targets, n_classes]` for x[:, r:]."""
    import tensorflow as tf
    taps = params["taps"]

    def body(j, h):  # tap j reads the symbol r - j steps before each target
        return j + 1, h + tf.gather(taps[j], x[:, j:j + n_targets])

    h0 = tf.zeros([tf.shape(x)[0], n_targets, taps.shape[-1]])
    _, h = tf.while_loop(lambda j, h: j < r, body, (tf.constant(0), h0))
    h = tf.nn.relu(h + params["b1"])
    h = tf.nn.relu(tf.matmul(h, params["w2"]) + params["b2"])
    return tf.matmul(h, params["w3"]) + params["b3"]


def _fit_one(train, valid, eval_, r, n_classes, hidden, n_targets, batch_size, learning_rate, max_steps,
             eval_every, patience, seed, log):
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    windows = _Windows(train, r + n_targets, rng)
    params = _build(r, n_classes, hidden, seed)
    variables = list(params.values())
    opt = tf.keras.optimizers.Adam(learning_rate)

    @tf.function(reduce_retracing=True)
    def train_step(x):
        with tf.GradientTape() as tape:
            logits = _logits(params, x, r, n_targets)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=x[:, r:], logits=logits))
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    @tf.function(reduce_retracing=True)
    def nll_sum(x, mask):
        logits = _logits(params, x, r, n_targets)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=x[:, r:], logits=logits)
        return tf.reduce_sum(nll * mask), tf.reduce_sum(mask)

    def mean_nll(batches):
        total = count = 0.0
        for x, m in batches:
            s, c = nll_sum(x, m)
            total, count = total + float(s), count + float(c)
        return total / max(count, 1.0)

    def chunks(windows_masks, size=64):
        x, m = windows_masks
        return [(x[i:i + size], m[i:i + size]) for i in range(0, len(x), size)]

    valid_b, train_b, eval_b = (chunks(_all_windows(s, r, n_targets)) for s in (valid, train, eval_))
    best, best_values, bad, step = float("inf"), None, 0, 0
    t0 = time.monotonic()
    while step < max_steps:
        for _ in range(eval_every):
            train_step(windows.batch(batch_size))
            step += 1
        v = mean_nll(valid_b)
        if v < best - 1e-4:
            best, best_values, bad = v, [var.numpy() for var in variables], 0
        else:
            bad += 1
            if bad >= patience:
                break
    for var, val in zip(variables, best_values):
        var.assign(val)
    result = {"train_nll": mean_nll(train_b), "eval_nll": mean_nll(eval_b), "valid_nll": best, "steps": step,
              "converged": bad >= patience, "seconds": time.monotonic() - t0}
    log(f"profile: r={r:5d} train {result['train_nll']:.4f} eval {result['eval_nll']:.4f} nats "
        f"({step} steps, {'early-stopped' if result['converged'] else 'step limit'}, {result['seconds']:.0f}s)")
    return result


def profile(train_sequences, eval_sequences, receptive_fields: Iterable[int], n_classes: int, *,
            hidden: int = 128, n_targets: int = 64, batch_size: int = 32, learning_rate: float = 3e-3,
            max_steps: int = 20000, eval_every: int = 100, patience: int = 5, valid_fraction: float = 0.1,
            seed: int = 0, log=print) -> list[dict]:
    """NLL of the sec. 4.2 predictor against its receptive field.

    Args:
      train_sequences, eval_sequences: integer sequences (`[N, T]` numpy arrays, lists of 1-D
        arrays, or tf.data sources of excerpts) with values in [0, n_classes).
      receptive_fields: the r values (0 = unigram entropy).
      n_classes: alphabet size (256 for mu-law audio, K for codes).
      hidden: width of the two hidden layers. n_targets: targets per training window.
      max_steps, eval_every, patience: early stopping on the validation part of the training
        sequences (the last `valid_fraction` of each training sequence).

    Returns:
      One dict per r: receptive_field, train_nll, eval_nll (nats per timestep, averaged over
      every position with a full receptive field of context), steps, converged.
    """
    train = _as_sequences(train_sequences)
    eval_ = _as_sequences(eval_sequences)
    cut = [int(len(s) * (1 - valid_fraction)) for s in train]
    fit, valid = [s[:c] for s, c in zip(train, cut)], [s[c:] for s, c in zip(train, cut)]
    results = []
    for r in receptive_fields:
        r = int(r)
        if r == 0:
            tr, ev = unigram_nll(train, eval_, n_classes)
            results.append({"receptive_field": 0, "train_nll": tr, "eval_nll": ev, "steps": 0, "converged": True})
            log(f"profile: r=    0 train {tr:.4f} eval {ev:.4f} nats (unigram entropy)")
            continue
        res = _fit_one(fit, [v for v in valid if len(v) > r], eval_, r, n_classes, hidden, n_targets, batch_size,
                       learning_rate, max_steps, eval_every, patience, seed, log)
        results.append({"receptive_field": r, **{k: res[k] for k in ("train_nll", "eval_nll", "steps", "converged")}})
    return results


# --- sources ----------------------------------------------------------------------------------------

def audio_sequences(data_dir: str, max_timesteps: int, split: str) -> list[np.ndarray]:
    """Up to `max_timesteps` of mu-law audio of a split, taken evenly across its records."""
    from tf_ada import data
    seqs = data.read_sequences(data_dir, split)
    return _spread(seqs, max_timesteps)


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
                   chunk_samples: int = 2 ** 16) -> tuple[list[np.ndarray], int, object]:
    """Codes of a split's audio under a trained ADA (the paper uses model #1.2): (sequences, K, config)."""
    from tf_ada import data
    from tf_ada.models.ada import ADA
    from tf_ada.train import load_model
    model, _ = load_model(checkpoint)
    if not isinstance(model, ADA):
        raise ValueError(f"{checkpoint}: not an ADA run folder")
    hop = model.config.hop
    audio = _spread(data.read_sequences(data_dir, split), max_timesteps * hop)
    out = []
    for s in audio:
        codes = []
        usable = len(s) // hop * hop
        for start in range(0, usable, chunk_samples):
            piece = s[start:min(start + chunk_samples, usable)]
            codes.append(model.encode(piece[None]).numpy()[0])
        if codes:
            out.append(np.concatenate(codes))
    return out, model.config.n_codes, model.config


# --- output -----------------------------------------------------------------------------------------

def write_csv(path: str, results: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["receptive_field", "train_nll", "eval_nll", "steps", "converged"])
        w.writeheader()
        for r in results:
            w.writerow({k: r[k] for k in w.fieldnames})


def read_csv(path: str) -> list[dict]:
    with open(path) as f:
        return [{"receptive_field": int(r["receptive_field"]), "train_nll": float(r["train_nll"]),
                 "eval_nll": float(r["eval_nll"])} for r in csv.DictReader(f)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.predictability", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=["audio", "codes"], required=True)
    parser.add_argument("--data", required=True, help="audio shard folder (tf-ada prepare)")
    parser.add_argument("--checkpoint", help="ADA run folder whose codes to profile (--source codes)")
    parser.add_argument("--rf", default="0,1,2,4,8,16,32,64,128,256,512,1024")
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-train-timesteps", type=int, default=2_000_000)
    parser.add_argument("--max-eval-timesteps", type=int, default=200_000)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--max-steps", type=int, default=20000)
    args = parser.parse_args(argv)
    from tf_ada import data
    os.makedirs(args.out, exist_ok=True)
    eval_split = data.load_manifest(args.data).get("eval_split", "eval")
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
    rfs = [int(v) for v in args.rf.split(",")]
    results = profile(train, eval_, rfs, n_classes, hidden=args.hidden, max_steps=args.max_steps)
    csv_path = os.path.join(args.out, f"profile_{args.source}.csv")
    write_csv(csv_path, results)
    from analysis.plot_profiles import plot_profile
    png = os.path.join(args.out, f"profile_{args.source}.png")
    plot_profile(results, png, title=f"Predictability of {args.source}", marker=marker)
    print(f"predictability: wrote {csv_path} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

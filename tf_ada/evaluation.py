"""Held-out evaluation as the paper does it, with full context, and standard errors that decide.

Two protocols, both reported and labelled (sec. 4.1, Table 1 caption):

* **paper**: held-out sequences of one second (16,000 samples at 16 kHz; a multiple of every
  hop), each evaluated cold, on its own: the local model starts from the start value, the encoder
  and modulator see the stack's zero padding at the sequence's edges. NLL in nats per timestep;
  perplexity = exp(entropy of code usage) computed *within each sequence* and averaged over
  sequences. With hop 64 a sequence holds only 250 codes, so its perplexity is at most 250 and
  in practice far lower: "this is why the perplexity of #1.7 is underestimated" (Table 1 caption).
* **full**: the same one-second target windows, but each is evaluated with its full context
  from the recording itself: the local model sees every past sample it can use, the encoder and
  modulator every sample they can see to both sides (`context_of(model)`). Only a recording's
  true edges are padded, with the silence value (what precedes and follows a recording). The
  perplexity is pooled: exp(entropy of the code usage summed over all real positions).

A sequence's last window is shorter when the recording ends inside it: it is padded with
silence to one second and its padded targets are masked (both protocols), and codes whose
frame starts after the recording's end are not counted.

Every evaluation returns per-window sums (`Results`) tagged with the recording and the work (a
manifest file's `piece`) it comes from, so that

* standard errors are clustered by work (windows of one work are correlated), and
* two models evaluated on the same windows are compared as paired differences (`difference`).

Statistics are delta-method (linearised) estimates with the CR1 cluster-robust variance:
for a statistic theta with per-window influence values u_i (theta_hat - theta ~ sum_i u_i),
    se^2 = G / (G - 1) * sum_g (sum_{i in g} u_i)^2        (G works).
`verdict` is the one rule every reproduce script uses: a claim *holds* only when the difference
exceeds two standard errors in the claimed direction, *does not hold* only when it exceeds two
in the other, and is *inconclusive* otherwise.

Budget: evaluating a whole split every few thousand steps at paper scale (4 h held out, 400 h
of training data) would dominate training, so periodic evaluation reads at most
`max_sequences` windows per split, chosen by `select_sequences`: deterministic (a function of
the manifest only, so every model of a table sees the same windows and can be paired), spread
over works (round robin over works in hash order, evenly spaced windows within each work).
`max_sequences=None` evaluates the whole split (the final evaluation).

Shapes: windows are int `[N, left + length + right]`, masks float32 `[N, length]`, per-window
results `[N]` (code counts `[N, K]`).
"""
from __future__ import annotations

import dataclasses
import math
import os
import weakref
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_ada import data

PAPER_SECONDS = 1.0  # Table 1 caption: "held-out evaluation sequences were limited to one second"
PROTOCOLS = ("paper", "full")
HOLDS, DOES_NOT_HOLD, INCONCLUSIVE = "holds", "does not hold", "inconclusive"


# --- what a model needs around its targets ------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Context:
    """Samples a model's outputs at a window of targets depend on, outside the window.

    Attributes:
      left: past samples needed (a multiple of `hop`).
      right: future samples needed (a multiple of `hop`; 0 for a plain WaveNet).
      hop: the model's code hop (1 without codes); window starts and lengths are multiples of it.
    """
    left: int
    right: int
    hop: int = 1


def _round_up(n: int, multiple: int) -> int:
    return -(-int(n) // multiple) * multiple


def context_of(config) -> Context:
    """The full context of a WaveNet or ADA config (sec. 3.3, app. A).

    WaveNet: x[t] is predicted from x[t - receptive_field : t], so left = receptive field.
    ADA: logits at t read the local model's receptive field and the bias of frame f = t // hop;
    that bias reads quantised frames f +- H_m (modulator half receptive field, in code steps),
    each pooled from hop encoder outputs that read +- H_e samples. So
        left  = max(RF_local, H_m * hop + H_e + hop - 1),   right = H_m * hop + H_e + hop - 1,
    rounded up to the hop (paper scale, hop 8: 4600 each side; hop 64: 33216).
    """
    hop = int(getattr(config, "hop", 1) or 1)
    local = getattr(config, "local", config)
    left = local.receptive_field
    right = 0
    if hasattr(config, "encoder"):
        reach = config.modulator.half_receptive_field * hop + config.encoder.half_receptive_field + hop - 1
        left, right = max(left, reach), reach
    return Context(_round_up(left, hop), _round_up(right, hop), hop)


def forward(model, x) -> tuple[tf.Tensor, tf.Tensor]:
    """(NLL per step float32 `[B, T]`, codes int32 `[B, T // hop]`) of any trainable model, read
    through its `ModelOutput` (tf_ada/models/outputs.py); a WaveNet's codes are `[B, 0]`."""
    out = model.forward(tf.cast(x, tf.int32), training=False)
    return out.nll_per_step, tf.cast(out.codes, tf.int32)


_FORWARD_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _forward_fn(model):
    try:
        fn = _FORWARD_FNS.get(model)
    except TypeError:
        fn = None
    if fn is None:
        # a weak reference: the cached function must not keep its model (the dict's key) alive
        ref = weakref.ref(model)
        fn = tf.function(lambda x: forward(ref(), x), reduce_retracing=True)
        try:
            _FORWARD_FNS[model] = fn
        except TypeError:
            pass
    return fn


# --- which windows ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Window:
    """One target window: samples [start, start + n_real) of `recording` (a work's recording)."""
    recording: str
    work: str
    start: int
    n_real: int


def sequence_length(manifest, hop: int = 1, seconds: float = PAPER_SECONDS) -> int:
    """Timesteps of one evaluation sequence: `seconds` at the data's rate (`manifest`: a
    `data.Manifest` or its dict), rounded down to the hop (16,000 for 16 kHz audio, a multiple of
    both hops 8 and 64; 2,000 for hop-8 codes)."""
    n = int(round(float(data.Manifest.of(manifest).sample_rate or 16000) * seconds))
    return max(hop, n // hop * hop)


def list_windows(manifest, split: str, length: int) -> list[Window]:
    """Every window of `length` targets of `split` (`manifest`: a `data.Manifest` or its dict):
    consecutive, covering each recording once; a recording's last window holds its remainder
    (n_real < length). Sorted by (recording, start)."""
    out = []
    for name, info in data.Manifest.of(manifest).split_files(split).items():
        n, work = int(info.n_samples), str(info.piece or name)
        out += [Window(name, work, s, min(length, n - s)) for s in range(0, n, length)]
    return out


def select_sequences(windows: Sequence[Window], max_sequences: Optional[int], seed: int = 0) -> list[Window]:
    """At most `max_sequences` windows, deterministic and spread over works.

    Quotas go round robin over works in the order of `data.unit_hash(seed, work)` (one more
    window per work per round, while it has windows left); within a work the quota is taken at
    evenly spaced positions of its windows (in recording and time order). None or a cap at or
    above the number of windows keeps them all. Returns windows sorted by (recording, start).
    """
    windows = list(windows)
    if max_sequences is None or len(windows) <= max_sequences:
        return sorted(windows, key=lambda w: (w.recording, w.start))
    by_work: dict = {}
    for w in sorted(windows, key=lambda w: (w.recording, w.start)):
        by_work.setdefault(w.work, []).append(w)
    order = sorted(by_work, key=lambda k: (data.unit_hash(seed, k), k))
    quota = {k: 0 for k in order}
    left = int(max_sequences)
    while left > 0:
        for k in order:
            if left and quota[k] < len(by_work[k]):
                quota[k] += 1
                left -= 1
    picked = []
    for k in order:
        ws, q = by_work[k], quota[k]
        picked += [ws[int((j + 0.5) * len(ws) / q)] for j in range(q)]
    return sorted(picked, key=lambda w: (w.recording, w.start))


def read_recordings(data_dir: str, names: Iterable[str]) -> dict:
    """{name: the whole recording, native dtype `[n_samples]`}, reassembled from its records
    (a recording is stored in records of `chunk_samples`); only the shards holding `names` are read."""
    manifest = data.Manifest.read(data_dir)
    names = set(names)
    shards = sorted({manifest.files[n].shard for n in names})
    spec = {"data": tf.io.FixedLenFeature([], tf.string), "source": tf.io.FixedLenFeature([], tf.string),
            "offset": tf.io.FixedLenFeature([], tf.int64)}
    dtype = np.dtype(manifest.dtype)
    pieces: dict = {}
    ds = tf.data.TFRecordDataset([os.path.join(data_dir, s) for s in shards])
    for rec in ds.map(lambda r: tf.io.parse_single_example(r, spec)).as_numpy_iterator():
        name = rec["source"].decode()
        if name in names:
            pieces.setdefault(name, {})[int(rec["offset"])] = np.frombuffer(rec["data"], dtype)
    missing = names - set(pieces)
    if missing:
        raise data.DataError(f"{data_dir}: no records for {sorted(missing)[:3]}")
    return {n: np.concatenate([p[k] for k in sorted(p)]) for n, p in pieces.items()}


@dataclasses.dataclass
class Windows:
    """Model inputs for a list of target windows.

    Attributes:
      windows: the `Window`s, one per row.
      x: int `[N, left + length + right]`: context, targets, context (silence beyond the recording).
      mask: float32 `[N, length]`: 1 on real targets.
      context: the left/right context included (0/0 for the paper protocol) and the hop.
      length: targets per window.
    """
    windows: list
    x: np.ndarray
    mask: np.ndarray
    context: Context
    length: int


def cut_windows(recordings: dict, windows: Sequence[Window], length: int, context: Context,
                pad_value: int) -> Windows:
    """Cuts each window with `context.left` samples before and `context.right` after it from its
    recording, padding with `pad_value` only beyond the recording's true edges."""
    c_l, c_r = context.left, context.right
    xs, masks = [], []
    for w in windows:
        rec = recordings[w.recording]
        lo, hi = w.start - c_l, w.start + length + c_r
        x = np.full(hi - lo, pad_value, rec.dtype)
        a, b = max(lo, 0), min(hi, rec.size)
        x[a - lo:b - lo] = rec[a:b]
        xs.append(x)
        masks.append((np.arange(length) < w.n_real).astype(np.float32))
    width = c_l + length + c_r
    return Windows(list(windows), np.stack(xs) if xs else np.zeros([0, width], np.int32),
                   np.stack(masks) if masks else np.zeros([0, length], np.float32), context, length)


def prepare_windows(data_dir: str, split: str, protocol: str, context: Context,
                    max_sequences: Optional[int] = None, seconds: float = PAPER_SECONDS,
                    seed: int = 0) -> Windows:
    """The inputs of one protocol on one split: "paper" (no context: each sequence alone) or
    "full" (`context` from the recording itself). Both protocols select the same windows."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    manifest = data.Manifest.read(data_dir)
    length = sequence_length(manifest, context.hop, seconds)
    chosen = select_sequences(list_windows(manifest, split, length), max_sequences, seed)
    if not chosen:
        raise data.DataError(f"{data_dir}: split {split!r} holds no recordings")
    recordings = read_recordings(data_dir, {w.recording for w in chosen})
    ctx = context if protocol == "full" else Context(0, 0, context.hop)
    return cut_windows(recordings, chosen, length, ctx, int(manifest.pad_value))


# --- per-window results ------------------------------------------------------------------------

@dataclasses.dataclass
class Results:
    """Per-window sums of one protocol on one split.

    Attributes:
      recording, work: str `[N]`; start: int64 `[N]` (first target sample in the recording).
      nll_sum: float64 `[N]`, nats summed over the window's real targets; count: int64 `[N]`.
      code_counts: int64 `[N, K]` usage of each code over the window's real frames, or None
        (models without codes).
    """
    recording: np.ndarray
    work: np.ndarray
    start: np.ndarray
    nll_sum: np.ndarray
    count: np.ndarray
    code_counts: Optional[np.ndarray] = None

    def __len__(self):
        return len(self.nll_sum)

    def keys(self) -> list:
        return list(zip(self.recording.tolist(), self.start.tolist()))

    def take(self, index) -> "Results":
        index = np.asarray(index, np.int64)
        return Results(self.recording[index], self.work[index], self.start[index], self.nll_sum[index],
                       self.count[index], None if self.code_counts is None else self.code_counts[index])

    def to_arrays(self, prefix: str) -> dict:
        out = {f"{prefix}/{k}": getattr(self, k) for k in ("recording", "work", "start", "nll_sum", "count")}
        if self.code_counts is not None:
            out[f"{prefix}/code_counts"] = self.code_counts
        return out

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> "Results":
        get = lambda k: arrays[f"{prefix}/{k}"]
        codes = f"{prefix}/code_counts"
        return cls(get("recording").astype(str), get("work").astype(str), get("start").astype(np.int64),
                   get("nll_sum").astype(np.float64), get("count").astype(np.int64),
                   arrays[codes].astype(np.int64) if codes in arrays else None)


def evaluate_windows(model, windows: Windows, batch_size: int = 8, n_codes: Optional[int] = None) -> Results:
    """Runs `model` over prepared windows and sums NLL and code usage over each window's real targets.

    Args:
      model: a WaveNet or an ADA (anything `forward` reads), with the weights to evaluate.
      windows: from `prepare_windows` / `cut_windows`.
      batch_size: windows per forward pass.
      n_codes: K for code counts (default: `model.config.n_codes`, if any).
    """
    fn = _forward_fn(model)
    ctx, length = windows.context, windows.length
    hop = ctx.hop
    n_codes = n_codes or getattr(getattr(model, "config", None), "n_codes", None)
    n_real = np.array([w.n_real for w in windows.windows], np.int64)
    nll_sums, counts, code_counts = [], [], []
    for i in range(0, len(windows.windows), batch_size):
        x = windows.x[i:i + batch_size].astype(np.int32)
        mask = windows.mask[i:i + batch_size]
        nll, codes = fn(tf.constant(x))
        nll = nll.numpy()[:, ctx.left:ctx.left + length].astype(np.float64)
        nll_sums.append((nll * mask).sum(1))
        counts.append(mask.sum(1).astype(np.int64))
        codes = codes.numpy()
        if codes.shape[1] and n_codes:
            frames = codes[:, ctx.left // hop:(ctx.left + length) // hop]
            real = np.arange(frames.shape[1])[None, :] * hop < n_real[i:i + batch_size, None]
            code_counts.append(np.stack([np.bincount(f[r], minlength=n_codes)[:n_codes] for f, r in zip(frames, real)]))
    ws = windows.windows
    return Results(np.array([w.recording for w in ws], dtype=str), np.array([w.work for w in ws], dtype=str),
                   np.array([w.start for w in ws], np.int64), np.concatenate(nll_sums) if nll_sums else np.zeros(0),
                   np.concatenate(counts) if counts else np.zeros(0, np.int64),
                   np.concatenate(code_counts).astype(np.int64) if code_counts else None)


# --- statistics -----------------------------------------------------------------------------------

def clustered_se(influence, clusters) -> float:
    """CR1 cluster-robust standard error of a linearised statistic.

    Args:
      influence: float `[N]`, each unit's linearised contribution to (statistic - its value).
      clusters: `[N]` cluster labels (works).

    Returns:
      sqrt(G / (G - 1) * sum_g (sum_{i in g} influence_i)^2); NaN with fewer than two clusters.
    """
    influence = np.asarray(influence, np.float64)
    labels, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    g = len(labels)
    if g < 2:
        return float("nan")
    totals = np.bincount(inverse, weights=influence, minlength=g)
    return float(math.sqrt(g / (g - 1) * np.sum(totals ** 2)))


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A statistic, its per-unit influence values and the units' clusters (works).

    Linear combinations of estimates on the same units are estimates (`a - b`, `1.1 * a`,
    `a - 200.0`): that is how paired differences get their standard error.
    """
    value: float
    influence: np.ndarray
    clusters: np.ndarray

    @property
    def se(self) -> float:
        return clustered_se(self.influence, self.clusters)

    @property
    def n_clusters(self) -> int:
        return int(len(np.unique(self.clusters)))

    def _check(self, other: "Estimate"):
        if len(self.clusters) != len(other.clusters) or np.any(self.clusters != other.clusters):
            raise ValueError("paired estimates must be on the same units (align them first)")

    def __sub__(self, other):
        if isinstance(other, Estimate):
            self._check(other)
            return Estimate(self.value - other.value, self.influence - other.influence, self.clusters)
        return Estimate(self.value - float(other), self.influence, self.clusters)

    def __add__(self, other):
        if isinstance(other, Estimate):
            self._check(other)
            return Estimate(self.value + other.value, self.influence + other.influence, self.clusters)
        return Estimate(self.value + float(other), self.influence, self.clusters)

    def __mul__(self, k: float):
        return Estimate(self.value * float(k), self.influence * float(k), self.clusters)

    __rmul__ = __mul__

    def __neg__(self):
        return self * -1.0


def mean_estimate(values, clusters) -> Estimate:
    """The mean of per-unit values `[N]` (e.g. per-sequence perplexities), influence (v_i - mean) / N.

    Over seeds (issue 10: "or over seeds where that is the question"): one value per seed and
    `clusters = np.arange(n_seeds)` give the usual standard error of the mean over seeds."""
    v = np.asarray(values, np.float64)
    m = float(v.mean()) if v.size else float("nan")
    return Estimate(m, (v - m) / max(v.size, 1), np.asarray(clusters))


def ratio_estimate(sums, counts, clusters) -> Estimate:
    """sum(sums) / sum(counts) (NLL per timestep over all real targets), influence
    (s_i - ratio * c_i) / sum(counts) (the delta method for a ratio of totals)."""
    s, c = np.asarray(sums, np.float64), np.asarray(counts, np.float64)
    total = c.sum()
    r = float(s.sum() / total) if total > 0 else float("nan")
    return Estimate(r, (s - r * c) / max(total, 1e-12), np.asarray(clusters))


def perplexity(counts) -> np.ndarray:
    """exp(entropy) of code usage (sec. 4.1; at most K): counts `[..., K]` -> `[...]` (NaN where empty)."""
    c = np.asarray(counts, np.float64)
    n = c.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = c / n
        h = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), -1)
    return np.where(n[..., 0] > 0, np.exp(h), np.nan)


def per_sequence_perplexity_estimate(code_counts, clusters) -> Estimate:
    """The paper's perplexity (Table 1 caption): exp(entropy) within each sequence, averaged over
    the sequences that hold codes. code_counts `[N, K]`."""
    ppl = perplexity(code_counts)
    keep = np.isfinite(ppl)
    est = mean_estimate(ppl[keep], np.asarray(clusters)[keep])
    influence = np.zeros(len(ppl))
    influence[keep] = est.influence
    return Estimate(est.value, influence, np.asarray(clusters))


def pooled_perplexity_estimate(code_counts, clusters) -> Estimate:
    """exp(entropy of the code usage summed over all windows). code_counts `[N, K]`.

    Influence of window i with counts c_i (n_i codes), pooled usage p, entropy H, total N:
    dH = -(sum_k c_ik log p_k + n_i H) / N, times P = exp(H)."""
    c = np.asarray(code_counts, np.float64)
    total = c.sum(0)
    n = total.sum()
    ppl = float(perplexity(total))
    if n == 0:
        return Estimate(float("nan"), np.zeros(len(c)), np.asarray(clusters))
    p = total / n
    logp = np.log(np.where(p > 0, p, 1.0))
    h = math.log(ppl)
    influence = -ppl * (c @ logp + c.sum(1) * h) / n
    return Estimate(ppl, influence, np.asarray(clusters))


def nll_estimate(results: Results) -> Estimate:
    """NLL in nats per timestep over every real target, clustered by work."""
    return ratio_estimate(results.nll_sum, results.count, results.work)


def perplexity_estimate(results: Results, protocol: str) -> Optional[Estimate]:
    """The protocol's perplexity: per-sequence average ("paper") or pooled ("full"); None without codes."""
    if results.code_counts is None:
        return None
    fn = per_sequence_perplexity_estimate if protocol == "paper" else pooled_perplexity_estimate
    return fn(results.code_counts, results.work)


def align(*results: Results) -> list:
    """The same windows, in the same order, from each `Results` (their common (recording, start) keys)."""
    keysets = [dict((k, i) for i, k in enumerate(r.keys())) for r in results]
    common = sorted(set(keysets[0]).intersection(*keysets[1:]))
    return [r.take([ks[k] for k in common]) for r, ks in zip(results, keysets)]


def difference(a: Estimate, b: Estimate) -> Estimate:
    """a - b on the same units, with the clustered SE of the paired difference."""
    return a - b


def quotient(a: Estimate, b: Estimate) -> Estimate:
    """a / b on the same units (delta method): influence (u_a - (a / b) u_b) / b."""
    a._check(b)
    q = a.value / b.value
    return Estimate(q, (a.influence - q * b.influence) / b.value, a.clusters)


def independent_difference(a: Estimate, b: Estimate) -> tuple[float, float]:
    """(a - b, its SE) for estimates on different, independent units (e.g. audio vs codes
    excerpts): the SEs add in quadrature. Prefer `difference` whenever the units can be paired."""
    return a.value - b.value, math.hypot(a.se, b.se)


def verdict(diff: float, se: float, sign: int) -> str:
    """The one rule for every claim: the claim says `diff` has sign `sign` (-1: "a < b" with
    diff = a - b; +1: "a > b"). "holds" when diff * sign > 2 se, "does not hold" when
    diff * sign < -2 se, else "inconclusive" (also when the SE is unknown)."""
    if sign not in (-1, 1):
        raise ValueError("sign must be -1 or +1")
    if diff is None or se is None or not math.isfinite(diff) or not math.isfinite(se):
        return INCONCLUSIVE
    if diff * sign > 2.0 * se:
        return HOLDS
    if diff * sign < -2.0 * se:
        return DOES_NOT_HOLD
    return INCONCLUSIVE


def combine(verdicts: Iterable[str]) -> str:
    """A claim made of several conditions: holds when all hold, does not hold when any does not."""
    verdicts = list(verdicts)
    if any(v == DOES_NOT_HOLD for v in verdicts):
        return DOES_NOT_HOLD
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    return INCONCLUSIVE


def summarize(results: Results, protocol: str) -> dict:
    """{nll, nll_se, perplexity, perplexity_se (when codes), codes_in_use, timesteps, sequences, works}."""
    nll = nll_estimate(results)
    out = {"nll": nll.value, "nll_se": nll.se, "timesteps": int(results.count.sum()),
           "sequences": len(results), "works": nll.n_clusters}
    ppl = perplexity_estimate(results, protocol)
    if ppl is not None:
        out.update(perplexity=ppl.value, perplexity_se=ppl.se,
                   codes_in_use=int((results.code_counts.sum(0) > 0).sum()))
    return out


# --- files ----------------------------------------------------------------------------------------

SEQUENCES_FILE = "eval_sequences.npz"


def save_results(path: str, results: dict, meta: Optional[dict] = None) -> None:
    """Writes {(split, protocol): Results} (and scalar `meta`, e.g. the step) to one .npz, atomically."""
    arrays = {f"meta/{k}": np.asarray(v) for k, v in (meta or {}).items()}
    for (split, protocol), r in results.items():
        arrays.update(r.to_arrays(f"{split}/{protocol}"))
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load_results(path: str) -> tuple[dict, dict]:
    """Inverse of `save_results`: ({(split, protocol): Results}, meta)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = {k[5:]: v.item() for k, v in arrays.items() if k.startswith("meta/")}
    prefixes = sorted({k.rsplit("/", 1)[0] for k in arrays if not k.startswith("meta/")})
    return {tuple(p.split("/")): Results.from_arrays(arrays, p) for p in prefixes}, meta


DEFAULT_MAX_SEQUENCES = 256  # periodic budget per split: 256 one-second windows (4.3 minutes of audio)


def evaluate_model(model, data_dir: str, splits: Sequence[str] = ("eval",), protocols: Sequence[str] = PROTOCOLS,
                   max_sequences: Optional[int] = None, batch_size: int = 8, batch_timesteps: Optional[int] = None,
                   windows: Optional[dict] = None, log: Optional[Callable[[str], None]] = None) -> dict:
    """Both protocols on each split: {(split, protocol): Results}.

    Args:
      max_sequences: windows per split (`select_sequences`); a {split: cap} dict sets it per split.
      batch_size: windows per forward pass, or, when `batch_timesteps` is given,
        max(1, batch_timesteps // window width) (the full protocol's windows are wider).
      windows: caches prepared `Windows` by (split, protocol, cap) between calls (the Trainer
        passes its own dict so the data are read once per run).
    """
    windows = {} if windows is None else windows
    ctx = context_of(model.config)
    out = {}
    for split in splits:
        cap = max_sequences.get(split) if isinstance(max_sequences, dict) else max_sequences
        for protocol in protocols:
            key = (split, protocol, cap)
            if key not in windows:
                windows[key] = prepare_windows(data_dir, split, protocol, ctx, cap)
            w = windows[key]
            batch = max(1, batch_timesteps // w.x.shape[1]) if batch_timesteps else batch_size
            out[(split, protocol)] = evaluate_windows(model, w, batch)
            if log:
                log(f"evaluation: {split}/{protocol}: {len(out[(split, protocol)])} windows")
    return out

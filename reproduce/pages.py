"""HTML report pages shared by every reproduce script (demo, Table 1, Figure 2, Table 2, ...).

A page is a list of HTML fragments (strings) passed to `write_page`, which adds the style sheet
and a provenance block (date, commit, package versions, steps, data hash). Fragments come from
the builders below; every text value is escaped unless wrapped in `Raw`.

Stable API (other reproduce scripts build on it; add, do not change signatures):

    Raw(markup)                           markup passed through unescaped
    esc(value)                            escaped text
    table(header, rows, caption=None)     a real <table>; cells are text, numbers, None ("-") or Raw
    heading(text, level=2)                <h2> etc.
    paragraph(text_or_raw)                <p>
    verdict(text)                         "holds" / "does not hold" / "inconclusive" / "not run" badge
    asset(path, page_dir)                 a src relative to the page (files outside are copied in)
    audio(path, page_dir)                 <audio controls> for a wav
    image(path, page_dir, alt, width)     <img>
    audio_cell(wav, page_dir)             player above its spectrogram (PNG written beside the page)
    spectrogram_png(wav, png)             log-magnitude spectrogram of a wav
    training_curves_png(run_dir, png)     TensorBoard train/* scalars and eval_history.jsonl (or eval/*)
    code_usage(run_dir)                   summed code counts of eval_sequences.npz, with stats
    code_usage_png(run_dir, png)          ranked code-usage histogram (collapse is visible)
    run_figures(run_dir, page_dir, name)  curves and code usage of one run folder, as a fragment
    provenance(steps=None, data_dir=None, corpus_hash=None, extra=None)   dict
    write_page(path, title, parts, prov=None)    writes the document (prov: `provenance()`'s dict)
    tensorboard_scalars(run_dir, prefix)  {tag: [(step, value)]} of run_dir/tensorboard
    eval_history(run_dir)                 every evaluation of a run, in step order

Images are PNGs written with matplotlib (Agg) next to the page (`assets/`), so a page folder can be
copied and opened anywhere; nothing is loaded from the network and pages carry no script.
(Named `pages`, not `html`: `python reproduce/table1.py` puts reproduce/ first on sys.path, where a
module named html would shadow the standard library's.)
"""
from __future__ import annotations

import datetime
import hashlib
import html as _html
import importlib.metadata
import json
import math
import os
import platform
import shutil
import sys
from typing import Optional

import numpy as np

ASSETS = "assets"
PACKAGES = ("tf-ada", "tensorflow", "keras", "tensorflow-io", "tensorboard", "numpy", "matplotlib")

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}h3{margin-top:1.2em}
table{border-collapse:collapse;margin:0.6em 0;font-size:0.92em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:middle}
th{background:#eef1f5}tr:nth-child(even) td{background:#fafafa}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
caption{caption-side:top;text-align:left;font-weight:600;padding:0.3em 0}
.verdict{padding:1px 6px;border-radius:3px;font-weight:600;white-space:nowrap}
.holds{background:#d4f4d4}.does-not-hold{background:#f8d0d0}.inconclusive{background:#f6ecc0}.not-run{background:#e4e4e4}
.media{display:flex;flex-direction:column;gap:2px}.media audio{width:260px;height:32px}
.figs{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.provenance{font-size:0.85em;background:#f6f6f6;padding:0.5em 1em;margin-top:2em}
.provenance td,.provenance th{border:none;padding:1px 8px}
code{background:#f2f2f2;padding:0 3px}
"""


class Raw(str):
    """Markup that `table`, `paragraph` and `esc` pass through unescaped."""


def esc(value) -> str:
    """Escaped text (Raw passes through; None: "-")."""
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "-"
    return _html.escape(str(value), quote=True)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _cell(value, tag: str) -> str:
    if _is_number(value):
        text = "-" if isinstance(value, (float, np.floating)) and not math.isfinite(value) else \
            (f"{value:,}" if isinstance(value, (int, np.integer)) else f"{value:.4g}")
        return f"<{tag} class='num'>{text}</{tag}>"
    if isinstance(value, str) and not isinstance(value, Raw) and len(value) < 28 and _looks_numeric(value):
        return f"<{tag} class='num'>{esc(value)}</{tag}>"
    return f"<{tag}>{esc(value)}</{tag}>"


def _looks_numeric(text: str) -> bool:
    head = text.split(" ")[0].replace(",", "").lstrip("-+")
    return bool(head) and head.replace(".", "", 1).isdigit()


def table(header, rows, caption: Optional[str] = None, first_column_header: bool = False) -> Raw:
    """An HTML table. header: [text]; rows: [[cell]]; a cell is text (escaped), a number (formatted,
    right-aligned), None ("-") or Raw markup. A row may also be {"cells": [...], "bold": True}."""
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        bold = isinstance(row, dict) and row.get("bold")
        cells = row["cells"] if isinstance(row, dict) else row
        tags = ["th" if bold or (first_column_header and i == 0) else "td" for i in range(len(cells))]
        out.append("<tr>" + "".join(_cell(c, t) for c, t in zip(cells, tags)) + "</tr>")
    out.append("</table>")
    return Raw("\n".join(out))


def heading(text, level: int = 2) -> Raw:
    return Raw(f"<h{level}>{esc(text)}</h{level}>")


def paragraph(text) -> Raw:
    return Raw(f"<p>{esc(text)}</p>")


def verdict(text: str) -> Raw:
    """A coloured badge for a verdict of tf_ada.evaluation.verdict (or "not run")."""
    cls = text.replace(" ", "-") if text in ("holds", "does not hold", "inconclusive", "not run") else "not-run"
    return Raw(f"<span class='verdict {cls}'>{esc(text)}</span>")


# --- files the page refers to ---------------------------------------------------------------------

def relative(path: str, start: str) -> str:
    """`path` as seen from folder `start`, by real paths (a folder reached through a link or a copy of
    the tree reads the same), with forward slashes: how reports and pages name files."""
    return os.path.relpath(os.path.realpath(path), os.path.realpath(start)).replace(os.sep, "/")


def asset(path: str, page_dir: str) -> str:
    """`path` as a src relative to `page_dir`; a file outside the page's folder is copied into
    page_dir/assets/ first (named by a hash of its absolute path), so the page stays self-contained."""
    page_dir, path = os.path.abspath(page_dir), os.path.abspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"report asset {path} does not exist")
    if os.path.commonpath([page_dir, path]) != page_dir:
        digest = hashlib.sha1(path.encode()).hexdigest()[:10]
        dst = os.path.join(page_dir, ASSETS, f"{digest}_{os.path.basename(path)}")
        if not os.path.exists(dst) or os.path.getmtime(dst) < os.path.getmtime(path):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(path, dst)
        path = dst
    return os.path.relpath(path, page_dir).replace(os.sep, "/")


def audio(path: str, page_dir: str) -> Raw:
    return Raw(f"<audio controls preload='metadata' src='{esc(asset(path, page_dir))}'></audio>")


def image(path: str, page_dir: str, alt: str = "", width: Optional[int] = None) -> Raw:
    size = f" width='{int(width)}'" if width else ""
    return Raw(f"<img src='{esc(asset(path, page_dir))}' alt='{esc(alt)}'{size}>")


def _asset_path(page_dir: str, source: str, suffix: str) -> str:
    """Where a derived PNG of `source` goes: page_dir/assets/<hash>_<name><suffix>."""
    digest = hashlib.sha1(os.path.abspath(source).encode()).hexdigest()[:10]
    name = os.path.splitext(os.path.basename(source.rstrip(os.sep)))[0]
    return os.path.join(page_dir, ASSETS, f"{digest}_{name}{suffix}")


def audio_cell(wav: str, page_dir: str) -> Raw:
    """A player with the wav's spectrogram under it (the PNG is written once, beside the page)."""
    png = _asset_path(page_dir, wav, "_spectrogram.png")
    if not os.path.exists(png) or os.path.getmtime(png) < os.path.getmtime(wav):
        spectrogram_png(wav, png)
    return Raw(f"<div class='media'>{audio(wav, page_dir)}{image(png, page_dir, 'spectrogram', 260)}</div>")


# --- figures ----------------------------------------------------------------------------------------

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def spectrogram_png(wav: str, png: str, max_seconds: float = 10.0) -> str:
    """Log-magnitude spectrogram (512-sample Hann frames, hop 128; dB below the loudest bin, floor
    -80 dB) of a wav's first channel, 0 Hz to Nyquist, as a small PNG."""
    from tf_ada.audio import read_wav
    samples, rate = read_wav(wav)
    x = samples[: int(max_seconds * rate), 0].astype(np.float64)
    n_fft, hop = 512, 128
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    mag = np.abs(np.fft.rfft(frames, axis=-1)).T
    db = 20 * np.log10(mag + 1e-10)
    db -= db.max()
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.25, 1.3), dpi=80)
    ax.imshow(np.maximum(db, -80), origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0,
              extent=(0, len(x) / rate, 0, rate / 2000))
    ax.set_ylabel("kHz", fontsize=7)
    ax.tick_params(labelsize=6, length=2)
    fig.tight_layout(pad=0.2)
    os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png


def tensorboard_scalars(run_dir: str, prefix: str = "") -> dict:
    """{tag: [(step, value)]} of the scalars in run_dir/tensorboard whose tag starts with `prefix`
    (every events file, TF2 tensor summaries and TF1 simple values; later files win on a step)."""
    logdir = os.path.join(run_dir, "tensorboard")
    if not os.path.isdir(logdir):
        return {}
    from tensorboard.backend.event_processing import event_file_loader
    out: dict = {}
    for name in sorted(os.listdir(logdir)):
        if "tfevents" not in name:
            continue
        for event in event_file_loader.EventFileLoader(os.path.join(logdir, name)).Load():
            for v in event.summary.value:
                if not v.tag.startswith(prefix):
                    continue
                if v.HasField("simple_value"):
                    value = v.simple_value
                elif v.HasField("tensor") and v.metadata.plugin_data.plugin_name == "scalars":
                    from tensorboard.util import tensor_util
                    value = float(tensor_util.make_ndarray(v.tensor))
                else:
                    continue
                out.setdefault(v.tag, {})[int(event.step)] = float(value)
    return {tag: sorted(points.items()) for tag, points in out.items()}


def eval_history(run_dir: str) -> list:
    """Every evaluation of a run folder, in step order: eval_history.jsonl, else the TensorBoard
    eval/* scalars (run folders written before eval_history.jsonl existed), as [{step, key: value}]."""
    path = os.path.join(run_dir, "eval_history.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    by_step: dict = {}
    for tag, points in tensorboard_scalars(run_dir, "eval/").items():
        for step, value in points:
            by_step.setdefault(step, {"step": step})[tag[len("eval/"):]] = value
    return [by_step[s] for s in sorted(by_step)]


EVAL_CURVES = (("train_nll_paper", "train split, 1 s"), ("eval_nll_paper", "held-out, 1 s"),
               ("eval_nll_full", "held-out, full context"))


def training_curves_png(run_dir: str, png: str, title: str = "") -> Optional[str]:
    """Training curves of one run folder: the TensorBoard train/* scalars (each loss term, mean
    over the logging interval) against step, and every evaluation (eval_history.jsonl) against step:
    NLL on both splits and protocols, and held-out perplexity on a second axis. None when the run
    has neither."""
    scalars = tensorboard_scalars(run_dir, "train/")
    usage = {t: scalars.pop(t) for t in ("train/perplexity", "train/codes_in_use") if t in scalars}
    train = {t: p for t, p in scalars.items() if t != "train/steps_per_s"}
    history = eval_history(run_dir)
    if not train and not history:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3 if usage else 2, figsize=(12 if usage else 8.4, 2.8), dpi=90)
    left, right = axes[0], axes[-1]
    if usage:  # codebook use during training (batch statistics): a collapse shows as a fall
        for tag, points in sorted(usage.items()):
            axes[1].plot(*zip(*points), lw=1.2, label=tag[len("train/"):] + " (training batches)")
        axes[1].set_title("code usage during training", fontsize=9)
        axes[1].set_xlabel("step", fontsize=8)
        axes[1].set_ylim(bottom=0)
        axes[1].legend(fontsize=7)
    for tag, points in sorted(train.items()):
        steps, values = zip(*points)
        left.plot(steps, values, label=tag[len("train/"):], lw=1.2)
    left.set_title("training (TensorBoard train/*)", fontsize=9)
    left.set_xlabel("step", fontsize=8)
    if train:
        left.legend(fontsize=7)
        positive = [v for p in train.values() for _, v in p if v > 0]
        if positive and max(positive) / min(positive) > 50:
            left.set_yscale("log")
    for key, label in EVAL_CURVES:
        points = [(h["step"], h[key]) for h in history if isinstance(h.get(key), (int, float))]
        if points:
            right.plot(*zip(*points), marker="o", ms=4, lw=1.2, label=label)
    right.set_ylabel("NLL (nats / timestep)", fontsize=8)
    right.set_xlabel("step", fontsize=8)
    right.set_title(f"evaluations (Polyak weights), {len(history)} in all", fontsize=9)
    ppl = [(h["step"], h["eval_perplexity_paper"]) for h in history if isinstance(h.get("eval_perplexity_paper"),
                                                                                      (int, float))]
    if ppl:
        twin = right.twinx()
        twin.plot(*zip(*ppl), marker="s", ms=4, lw=1, ls="--", color="gray", label="held-out perplexity (1 s)")
        twin.set_ylabel("perplexity", fontsize=8)
        twin.tick_params(labelsize=7)
    if history:  # one legend for both axes
        handles = [h for a in [right] + ([twin] if ppl else []) for h in a.get_legend_handles_labels()[0]]
        right.legend(handles=handles, fontsize=6, loc="best", framealpha=0.7)
    for ax in axes:
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png


def code_usage(run_dir: str, split: str = "eval", protocol: str = "full") -> Optional[dict]:
    """Code usage of a run's latest evaluation (eval_sequences.npz, tf_ada.evaluation.save_results):
    {counts: int [K] summed over the split's windows, n_codes: K, in_use, perplexity (pooled:
    exp of the entropy of usage), top_share (frequency of the most used code), frames, split,
    protocol, step}; None for models without codes or runs not evaluated yet."""
    from tf_ada import evaluation
    path = os.path.join(run_dir, evaluation.SEQUENCES_FILE)
    if not os.path.exists(path):
        return None
    results, meta = evaluation.load_results(path)
    res = results.get((split, protocol))
    if res is None or res.code_counts is None:
        candidates = [k for k, r in results.items() if r.code_counts is not None]
        if not candidates:
            return None
        split, protocol = sorted(candidates)[0]
        res = results[(split, protocol)]
    counts = res.code_counts.sum(0)
    total = int(counts.sum())
    p = counts[counts > 0] / max(total, 1)
    return {"counts": counts, "n_codes": int(counts.size), "in_use": int((counts > 0).sum()),
            "perplexity": float(np.exp(-(p * np.log(p)).sum())) if total else float("nan"),
            "top_share": float(counts.max() / total) if total else float("nan"), "frames": total,
            "split": split, "protocol": protocol, "step": meta.get("step")}


def code_usage_png(run_dir: str, png: str, title: str = "") -> Optional[dict]:
    """Histogram of code usage, codes ranked from most to least used (bars), with the unused codes
    shaded: a collapsed codebook shows as a few tall bars and a wide grey band. Returns
    `code_usage`'s dict with "png" added, or None without codes."""
    usage = code_usage(run_dir)
    if usage is None:
        return None
    counts, k = usage["counts"], usage["n_codes"]
    ranked = np.sort(counts)[::-1] / max(usage["frames"], 1)
    plt = _pyplot()
    fig, (ax, by_index) = plt.subplots(1, 2, figsize=(8.4, 2.5), dpi=90, gridspec_kw={"width_ratios": [3, 2]})
    ax.bar(np.arange(k), ranked, width=1.0, color="tab:blue")
    if usage["in_use"] < k:
        ax.axvspan(usage["in_use"] - 0.5, k - 0.5, color="0.85", zorder=0)
        ax.text((usage["in_use"] + k) / 2, ax.get_ylim()[1] * 0.9, f"{k - usage['in_use']} codes never used",
                ha="center", va="top", fontsize=8)
    ax.axhline(1 / k, color="tab:red", lw=0.8, ls="--", label=f"uniform (1/{k})")
    ax.set_xlim(-0.5, k - 0.5)
    ax.set_xlabel("code rank (most used first)", fontsize=8)
    ax.set_ylabel("share of frames", fontsize=8)
    ax.legend(fontsize=7, loc="center right")
    ax.set_title(f"{usage['in_use']}/{k} codes in use, perplexity {usage['perplexity']:.1f}, "
                 f"top code {100 * usage['top_share']:.1f}% ({usage['split']}, {usage['protocol']}, "
                 f"{usage['frames']:,} frames)", fontsize=8)
    by_index.bar(np.arange(k), counts, width=1.0, color="tab:gray")
    by_index.set_xlim(-0.5, k - 0.5)
    by_index.set_xlabel("code index", fontsize=8)
    by_index.set_title("frames per code", fontsize=8)
    for a in (ax, by_index):
        a.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return dict(usage, png=png)


def run_figures(run_dir: str, page_dir: str, name: str) -> Raw:
    """One run folder's training curves and (for models with codes) its code-usage histogram, as
    a fragment; says so in words when the run has neither."""
    parts = []
    curves = training_curves_png(run_dir, _asset_path(page_dir, run_dir, "_curves.png"), name)
    if curves:
        parts.append(image(curves, page_dir, f"training curves of {name}"))
    usage = code_usage_png(run_dir, _asset_path(page_dir, run_dir, "_codes.png"), f"code usage of {name}")
    if usage:
        parts.append(image(usage["png"], page_dir, f"code usage of {name}"))
    if not parts:
        return Raw(f"<p>{esc(name)}: no TensorBoard scalars, evaluations or codes in <code>{esc(run_dir)}</code>."
                   "</p>")
    return Raw("<div class='figs'>" + "".join(parts) + "</div>")


# --- provenance -----------------------------------------------------------------------------------

def provenance(steps=None, data_dir: Optional[str] = None, corpus_hash=None, extra: Optional[dict] = None) -> dict:
    """What a page was made from: UTC date, git commit (with "+ uncommitted changes" when tracked
    files differ from it), command line, Python and package versions, steps (a number or
    {run: steps}), data folder and corpus hash(es), and any `extra` {label: value}."""
    from tf_ada.runs import code_commit
    commit = code_commit()
    versions = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    if corpus_hash is None and data_dir:
        try:
            from tf_ada import data
            corpus_hash = data.Manifest.read(data_dir).corpus_hash
        except Exception:  # noqa: BLE001  (a page is still written without the data folder)
            corpus_hash = "unknown (no manifest.json in the data folder)"
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit or "unknown (not a git checkout)", "command": " ".join([os.path.basename(sys.argv[0])]
                                                                                    + sys.argv[1:]),
            "versions": versions, "steps": steps, "data_dir": data_dir, "corpus_hash": corpus_hash,
            "extra": extra or {}}


def _provenance_html(prov: dict) -> str:
    steps = prov.get("steps")
    if isinstance(steps, dict):
        steps = ", ".join(f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in steps.items())
    hashes = prov.get("corpus_hash")
    if isinstance(hashes, (list, tuple, set)):
        hashes = ", ".join(sorted(str(h) for h in hashes if h))
    rows = [("date", prov.get("date")), ("commit", prov.get("commit")), ("command", prov.get("command")),
            ("packages", ", ".join(f"{k} {v}" for k, v in prov.get("versions", {}).items())),
            ("steps", steps), ("data", prov.get("data_dir")), ("corpus hash", hashes)]
    rows += list(prov.get("extra", {}).items())
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f"<div class='provenance'><h2>Provenance</h2><table>{body}</table></div>"


def write_page(path: str, title: str, parts, prov: Optional[dict] = None) -> str:
    """Writes a complete HTML document (atomically): the title, `parts` in order, then the
    provenance block (`provenance()` with no arguments when not given). Returns `path`."""
    from tf_ada import fileio
    prov = prov if prov is not None else provenance()
    doc = ["<!doctype html>", "<html lang='en'><head><meta charset='utf-8'>",
           "<meta name='viewport' content='width=device-width, initial-scale=1'>",
           f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>", f"<h1>{esc(title)}</h1>"]
    doc += [str(p) if isinstance(p, Raw) else f"<p>{esc(p)}</p>" for p in parts]
    doc += [_provenance_html(prov), "</body></html>"]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fileio.atomic_write_text(path, "\n".join(doc) + "\n")
    return path

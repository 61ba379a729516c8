"""Shipped pretrained models: `load(name)` gives a trained model without training.

    from tf_ada import pretrained
    model, experiment, card = pretrained.load("1.2-cpu")     # Polyak weights, no optimiser state
    pretrained.available()                                    # names shipped in this checkout

    python -m tf_ada.pretrained list
    python -m tf_ada.pretrained export RUN_DIR 1.2-cpu --data runs/corpus/data [--command "..."]

A shipped model is a folder `tf_ada/pretrained/<name>/` (package data, see setup.cfg):

  experiment.json             the run's experiment (rebuilds the model: `train.build_model`)
  weights.npz                 the model's variables holding the Polyak averages (app. A), nothing
                              else (no optimiser state, no step): arrays v0000, v0001, ... in
                              `model.variables` order, and `paths`, their variable paths, which
                              must match the model experiment.json builds (order, names, shapes).
                              float32; float16 when exported with `float16=True`. (Not a
                              tf.train.Checkpoint of the model: a Keras 3 model's object graph
                              does not reach the variables of the blocks held in lists; the
                              Trainer's checkpoints reach them through the optimiser and the
                              Polyak list.)
  card.json, CARD.md          the model card: command, total steps, corpus hash and held-out
                              split, wall time, held-out NLL +/- SE under both protocols,
                              perplexity, codes in use, the NLL curve, file checksums, and the NLL
                              on a stored held-out excerpt (the loadability check)
  nll_curve.png               held-out NLL (both protocols, +/- 1 SE) against step
  check_excerpt.npy           that excerpt (1 s of the held-out split, mu-law uint8)

`export_run(run_dir, name, data_dir)` writes such a folder from a finished run folder (the
`Trainer`'s). The registry's root is this package's folder; `root=` or the environment variable
`TF_ADA_PRETRAINED` points it elsewhere (tests, a downloaded set).
"""
from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import sys
import tempfile
from typing import Optional

import numpy as np

from tf_ada import __version__, fileio
from tf_ada.runs import RunError

FORMAT = "tf-ada-pretrained/1"
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
ENV_VAR = "TF_ADA_PRETRAINED"
MAX_BYTES = 5_000_000  # issue 13: each shipped model under 5 MB
WEIGHTS = "weights.npz"
CARD_JSON, CARD_MD, CURVE_PNG, EXPERIMENT = "card.json", "CARD.md", "nll_curve.png", "experiment.json"
CHECK_EXCERPT = "check_excerpt.npy"
# the NLL of the stored excerpt must come back within this (nats per timestep): float32 sums over
# 16,000 steps differ by about 1e-6 between CPUs and thread counts; a wrong weight moves it by far more
CHECK_TOLERANCE = 1e-3
PAUSE_SECONDS = 1800.0  # wall time: gaps between log times longer than this are pauses between stretches

# The models issue 13 ships: name -> (Table 1 row, scale, what it is)
MODELS = {
    "1.2-cpu": ("1.2", "cpu", "VQ-VAE ADA, continuous input, hop 8 (Table 1 row 1.2 at cpu scale)"),
    "1.5-cpu": ("1.5", "cpu", "AMAE ADA, one-hot input, hop 8 (Table 1 row 1.5 at cpu scale)"),
}
# eval.json keys a card quotes (each with its "_se" where eval.json has one)
EVAL_KEYS = ("eval_nll_paper", "eval_nll_full", "eval_perplexity_paper", "eval_perplexity_full",
             "eval_codes_in_use_paper", "eval_codes_in_use_full", "eval_sequences_paper", "eval_timesteps_paper",
             "eval_works", "train_nll_paper", "train_nll_full", "eval_max_sequences")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class PretrainedError(RunError):
    """A shipped model that is missing, unknown, damaged or cannot be exported; the message says
    which and what to do."""


# --- the registry --------------------------------------------------------------------------------

def root_dir(root: Optional[str] = None) -> str:
    """Where shipped models live: `root`, else $TF_ADA_PRETRAINED, else this package's folder."""
    return root or os.environ.get(ENV_VAR) or PACKAGE_DIR


def available(root: Optional[str] = None) -> list:
    """Names of the models shipped under the root (folders holding a card.json), sorted."""
    base = root_dir(root)
    if not os.path.isdir(base):
        return []
    return sorted(n for n in os.listdir(base) if _NAME.match(n) and os.path.isfile(os.path.join(base, n, CARD_JSON)))


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise PretrainedError(f"{name!r} is not a model name (letters, digits, '.', '_', '-')")
    return name


def folder(name: str, root: Optional[str] = None) -> str:
    """The folder of shipped model `name`; a clear error naming what is shipped when it is not."""
    _check_name(name)
    path = os.path.join(root_dir(root), name)
    if os.path.isfile(os.path.join(path, CARD_JSON)):
        return path
    shipped = ", ".join(available(root)) or "none"
    if name in MODELS:
        raise PretrainedError(
            f"{name} is not shipped in this checkout ({path} has no {CARD_JSON}); shipped here: {shipped}. "
            f"Train Table 1 row {MODELS[name][0]} at {MODELS[name][1]} scale and export it: "
            f"python -m tf_ada.pretrained export RUN_DIR {name} --data DATA_DIR")
    raise PretrainedError(f"unknown pretrained model {name!r}; known: {', '.join(MODELS)}; shipped here: {shipped}")


def read_card(name: str, root: Optional[str] = None) -> dict:
    """card.json of shipped model `name`."""
    path = os.path.join(folder(name, root), CARD_JSON)
    try:
        with open(path) as f:
            card = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise PretrainedError(f"{path}: cannot read the model card ({e})") from None
    return card


def load(name: str, root: Optional[str] = None):
    """The shipped model `name` with its Polyak weights: (model, experiment, card).

    Raises:
      PretrainedError: not shipped (the message names what is), a weight file missing or not the
        one the card lists (checksum), or weights that do not fit the model experiment.json builds.
    """
    read_card(name, root)  # a missing or unknown name: one clear error
    return load_folder(folder(name, root))


def load_folder(path: str):
    """`load` of a model folder given by its path: (model, experiment, card)."""
    from tf_ada import runs
    card_path = os.path.join(path, CARD_JSON)
    try:
        with open(card_path) as f:
            card = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise PretrainedError(f"{card_path}: cannot read the model card ({e})") from None
    if card.get("format") != FORMAT:
        raise PretrainedError(f"{card_path}: format {card.get('format')!r} is not {FORMAT!r}")
    name = card.get("name", os.path.basename(path))
    experiment = runs.read_experiment(os.path.join(path, EXPERIMENT))
    for fname, info in card["weights"]["files"].items():
        fpath = os.path.join(path, fname)
        if not os.path.isfile(fpath):
            raise PretrainedError(f"{name}: {fpath} is missing")
        if fileio.sha256_file(fpath) != info["sha256"]:
            raise PretrainedError(f"{name}: {fpath} is damaged (its sha256 is not the one {CARD_JSON} lists)")
    model = _build(experiment)
    _read_weights(model, os.path.join(path, WEIGHTS), name)
    return model, experiment, card


def _build(experiment):
    from tf_ada.train import build_model
    return build_model(experiment.model)


def write_weights(model, path: str, float16: bool = False) -> None:
    """weights.npz: every variable of `model` (v0000, ... in `model.variables` order; floats as
    float16 if asked) and `paths`, the variables' paths."""
    arrays = {f"v{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
    if float16:
        arrays = {k: a.astype(np.float16) if np.issubdtype(a.dtype, np.floating) else a for k, a in arrays.items()}
    with open(path, "wb") as f:
        np.savez(f, paths=np.array([v.path for v in model.variables]), **arrays)


def _read_weights(model, path: str, name: str) -> None:
    """Assigns weights.npz to `model`'s variables; refuses weights that do not fit (another number
    of variables, other paths or shapes: the model code changed since the export)."""
    with np.load(path, allow_pickle=False) as z:
        paths = [str(p) for p in z["paths"]]
        values = [z[f"v{i:04d}"] for i in range(len(paths))]
    variables = model.variables
    wrong = [f"{p} {a.shape} vs {v.path} {tuple(v.shape)}" for p, a, v in zip(paths, values, variables)
             if p != v.path or tuple(a.shape) != tuple(v.shape)]
    if len(paths) != len(variables) or wrong:
        raise PretrainedError(f"{name}: the weights do not fit the model its experiment.json builds ({len(paths)} "
                              f"arrays for {len(variables)} variables; first mismatch: {(wrong or ['-'])[0]}); "
                              f"the model code changed since they were exported")
    for v, a in zip(variables, values):
        v.assign(a.astype(np.asarray(v.numpy()).dtype))


def check_nll(model, name: str, root: Optional[str] = None) -> float:
    """The model's NLL (nats per timestep, the paper protocol: the excerpt alone) on the shipped
    model's stored held-out excerpt; its card states the value it must give."""
    x = np.load(os.path.join(folder(name, root), CHECK_EXCERPT))
    return excerpt_nll(model, x)


def excerpt_nll(model, x) -> float:
    """Mean NLL per timestep of one excerpt (int `[T]`) evaluated on its own."""
    from tf_ada import evaluation
    nll, _ = evaluation.forward(model, np.asarray(x, np.int32)[None, :])
    return float(np.mean(nll.numpy(), dtype=np.float64))


# --- what a card says about a run ----------------------------------------------------------------

def wall_time(run_dir: str, pause_seconds: float = PAUSE_SECONDS) -> tuple:
    """(seconds, source) of a run's training time from its log times: the run folder's train.log
    (time-stamped lines) where there is one, else its TensorBoard event times (each session's
    writer starts with an event, then one per logged step and evaluation). Gaps longer than
    `pause_seconds` (pauses between training stretches) are left out. (None, reason) if unknown."""
    # both sources, merged: a run resumed by older code has TensorBoard events from stretches that
    # its train.log (written since issue 14) does not cover; overlapping times add nothing
    logged, events = _log_times(os.path.join(run_dir, "train.log")), _event_times(os.path.join(run_dir, "tensorboard"))
    if logged:  # event times only for what train.log does not span (its local times vs UTC epochs: no overlap)
        events = [t for t in events if t < min(logged) or t > max(logged)]
    times = logged + events
    source = " and ".join(name for name, t in (("train.log", logged), ("TensorBoard event times", events)) if t)
    if len(times) < 2:
        return None, "unknown (no train.log or TensorBoard events)"
    gaps = np.diff(np.sort(np.asarray(times, np.float64)))
    paused = gaps > pause_seconds
    note = f"{source}; {int(paused.sum())} pause(s) over {pause_seconds / 60:.0f} min left out" if paused.any() \
        else source
    return float(gaps[~paused].sum()), note


def _log_times(path: str) -> list:
    if not os.path.isfile(path):
        return []
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            try:
                out.append(datetime.datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S").timestamp())
            except ValueError:
                continue
    return out


def _event_times(tb_dir: str) -> list:
    from tf_ada.runs import tensorboard_events
    return [e.wall_time for e in tensorboard_events(tb_dir)]


def nll_trend(history: list, per_steps: int = 1000) -> dict:
    """Is held-out NLL still falling? For each protocol: the drop from the last evaluation at least
    `per_steps` steps before the last one to the last one, per `per_steps` steps, against the last
    evaluation's standard error (issue 13: train longer while it falls by more than one SE per 1,000
    steps). The SE is the marginal one (unpaired), which overstates the paired difference's."""
    out = {}
    if not history:
        return out
    last = history[-1]
    earlier = [h for h in history if h["step"] <= last["step"] - per_steps]
    if not earlier:
        return out
    prev = earlier[-1]
    for protocol in ("paper", "full"):
        key = f"eval_nll_{protocol}"
        if key not in last or key not in prev:
            continue
        drop = (prev[key] - last[key]) * per_steps / (last["step"] - prev["step"])
        se = last.get(key + "_se")
        out[protocol] = {"from_step": prev["step"], "to_step": last["step"], f"drop_per_{per_steps}_steps": drop,
                         "se": se, "still_falling": bool(se is not None and drop > se)}
    return out


def plot_history(history: list, path: str, title: str) -> None:
    """nll_curve.png: held-out NLL (both protocols, error bars of one SE) and the training split's
    (paper protocol) against step."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.6))
    steps = [h["step"] for h in history]
    for key, label, fmt in (("eval_nll_paper", "held-out, 1-s sequences", "o-"),
                            ("eval_nll_full", "held-out, full context", "s--"),
                            ("train_nll_paper", "training split, 1-s sequences", "x:")):
        pts = [(s, h[key], h.get(key + "_se") or 0.0) for s, h in zip(steps, history) if key in h]
        if pts:
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], fmt=fmt, ms=3,
                        capsize=2, label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("NLL (nats per timestep)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _command_for(experiment, step: int, data_dir: str, run_dir: str) -> str:
    """The `tf-ada train` command that trains this experiment (a Table 1 row's when it is one)."""
    from tf_ada import configs
    row = experiment.paper_row
    for scale in configs.SCALES:
        if row in configs.TABLE1_ROWS and configs.table1_row(row, scale, steps=experiment.train.steps) == experiment:
            return (f"tf-ada train --row {row} --scale {scale} --steps {step} --data {data_dir} --out {run_dir}")
    return f"tf-ada train --experiment {os.path.join(run_dir, EXPERIMENT)} --data {data_dir} --out {run_dir}"


def _scale_of(experiment) -> Optional[str]:
    from tf_ada import configs
    for scale in configs.SCALES:
        if experiment.paper_row in configs.TABLE1_ROWS and \
                configs.table1_row(experiment.paper_row, scale).model == experiment.model:
            return scale
    return None


def _check_excerpt(data_dir: str, hop: int) -> tuple:
    """(excerpt int `[L]`, where) : the first whole 1-s window of the held-out split's
    deterministic selection (`evaluation.select_sequences`), L a multiple of the hop."""
    from tf_ada import data, evaluation
    manifest = data.Manifest.read(data_dir)
    split = manifest.eval_split
    length = evaluation.sequence_length(manifest, hop)
    windows = [w for w in evaluation.select_sequences(evaluation.list_windows(manifest, split, length), 8)
               if w.n_real == length]
    if not windows:
        raise PretrainedError(f"{data_dir}: the {split!r} split has no whole {length}-sample window")
    w = windows[0]
    rec = evaluation.read_recordings(data_dir, [w.recording])[w.recording]
    return rec[w.start:w.start + length].copy(), {"split": split, "recording": w.recording, "start": w.start,
                                                  "n_samples": length}


# --- export --------------------------------------------------------------------------------------

def export_run(run_dir: str, name: str, data_dir: str, root: Optional[str] = None, command: Optional[str] = None,
               float16: bool = False, max_bytes: int = MAX_BYTES, allow_stale_eval: bool = False,
               notes: str = "", log=print) -> str:
    """Writes shipped model `name` (its folder under the root) from a run folder; returns the folder.

    Args:
      run_dir: a `Trainer` run folder: experiment.json, checkpoints/, eval.json, eval_history.jsonl.
      name: the model's name, e.g. "1.2-cpu".
      data_dir: the prepared data it was trained and evaluated on: its corpus hash must be the one
        eval.json names; the check excerpt comes from its held-out split.
      root: the registry folder (default `root_dir()`: this package's folder).
      command: the exact command that trained it (default: reconstructed from experiment.json).
      float16: store the weights as float16 (half the bytes; check its held-out NLL first).
      max_bytes: refuse weights larger than this (issue 13: 5 MB).
      allow_stale_eval: export although eval.json is from another step than the newest
        checkpoint (the card then says so); refused by default, the card's numbers must be the
        shipped weights'.
      notes: free text for the card (e.g. what limits the model, the machine it trained on).

    The weights are the newest intact checkpoint's Polyak averages; they are written, read back
    through `load`, and the NLL on the check excerpt compared with the run folder's model.
    """
    from tf_ada import data
    from tf_ada.train import read_eval_history, restore_run
    _check_name(name)
    model, experiment, step, prefix = restore_run(run_dir)
    eval_path = os.path.join(run_dir, "eval.json")
    if not os.path.isfile(eval_path):
        raise PretrainedError(f"{run_dir}: no eval.json; evaluate the run before exporting it")
    with open(eval_path) as f:
        ev = json.load(f)
    if ev.get("step") != step and not allow_stale_eval:
        raise PretrainedError(f"{run_dir}: eval.json is from step {ev.get('step')}, the newest checkpoint from "
                              f"step {step}; the card must describe the shipped weights (finish the run, whose "
                              f"last step evaluates, or pass allow_stale_eval)")
    corpus = data.corpus_hash(data_dir)
    if ev.get("corpus_hash") and ev["corpus_hash"] != corpus:
        raise PretrainedError(f"{data_dir}: corpus hash {corpus[:12]} is not the one the run was evaluated on "
                              f"({ev['corpus_hash'][:12]}); give the data it was trained on")
    hop = getattr(experiment.model, "hop", 1)
    excerpt, where = _check_excerpt(data_dir, hop)
    reference_nll = excerpt_nll(model, excerpt)
    history = [h for h in read_eval_history(run_dir) if h.get("step", 0) <= step] or [ev]

    base = root_dir(root)
    os.makedirs(base, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=base, prefix=f".{name}.", suffix=".partial")
    try:
        write_weights(model, os.path.join(tmp, WEIGHTS), float16)
        files = [WEIGHTS]
        size = sum(os.path.getsize(os.path.join(tmp, f)) for f in files)
        if size > max_bytes:
            raise PretrainedError(f"{name}: the weights take {size / 1e6:.2f} MB, over the {max_bytes / 1e6:g} MB "
                                  f"limit" + ("" if float16 else "; export with float16=True (--float16)"))
        fileio.atomic_write_json(os.path.join(tmp, EXPERIMENT), experiment.to_dict())
        np.save(os.path.join(tmp, CHECK_EXCERPT), excerpt)
        seconds, wall_source = wall_time(run_dir)
        card = {
            "format": FORMAT, "name": name, "summary": MODELS.get(name, (None, None, experiment.name))[2],
            "paper_row": experiment.paper_row, "scale": _scale_of(experiment), "experiment": experiment.name,
            "command": command or _command_for(experiment, step, data_dir, run_dir),
            "command_source": "given" if command else "reconstructed from experiment.json",
            "steps": step, "checkpoint": os.path.basename(prefix or ""), "eval_step": ev.get("step"),
            "corpus_hash": corpus, "eval_split": where["split"],
            "wall_seconds": seconds, "wall_time_source": wall_source,
            "eval": {k2: ev[k2] for k in EVAL_KEYS for k2 in (k, k + "_se") if k2 in ev},
            "history": [{k: h[k] for k in ("step", "eval_nll_paper", "eval_nll_paper_se", "eval_nll_full",
                                            "eval_nll_full_se", "train_nll_paper") if k in h} for h in history],
            "trend": nll_trend(history),
            "weights": {"dtype": "float16" if float16 else "float32", "bytes": size,
                        "n_parameters": int(sum(int(np.prod(v.shape)) for v in model.variables)),
                        "files": {f: {"bytes": os.path.getsize(os.path.join(tmp, f)),
                                      "sha256": fileio.sha256_file(os.path.join(tmp, f))} for f in files}},
            "check": {"excerpt": CHECK_EXCERPT, **where, "nll": None, "nll_run_folder": reference_nll,
                      "tolerance": CHECK_TOLERANCE},
            "exported": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "tf_ada_version": __version__,
            "notes": notes,
        }
        fileio.atomic_write_json(os.path.join(tmp, CARD_JSON), card)
        # read back through the public path; the card states what the shipped weights give
        reloaded, _, _ = load_folder(tmp)
        card["check"]["nll"] = excerpt_nll(reloaded, excerpt)
        if not float16 and abs(card["check"]["nll"] - reference_nll) > 1e-5:
            raise PretrainedError(f"{name}: the exported weights give NLL {card['check']['nll']:.6f} on the check "
                                  f"excerpt, the run folder's model {reference_nll:.6f}")
        fileio.atomic_write_json(os.path.join(tmp, CARD_JSON), card)
        plot_history(history, os.path.join(tmp, CURVE_PNG), f"{name}: {card['summary']}")
        fileio.atomic_write_text(os.path.join(tmp, CARD_MD), card_markdown(card))
        os.chmod(tmp, 0o755)  # mkdtemp and the atomic writes make private files; shipped files are readable
        for f in os.listdir(tmp):
            os.chmod(os.path.join(tmp, f), 0o644)
        final = os.path.join(base, name)
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"pretrained: exported {run_dir} (step {step}) as {final} ({size / 1e6:.2f} MB of weights)")
    return final


def _pm(card: dict, key: str, digits: int = 3) -> str:
    ev = card["eval"]
    if ev.get(key) is None:
        return "-"
    se = ev.get(key + "_se")
    return f"{ev[key]:.{digits}f}" + (f" ± {se:.{digits}f}" if se is not None else "")


def card_markdown(card: dict) -> str:
    """CARD.md: the card for people."""
    ev = card["eval"]
    hours = f"{card['wall_seconds'] / 3600:.2f} h ({card['wall_time_source']})" if card.get("wall_seconds") \
        else card.get("wall_time_source", "unknown")
    lines = [f"# {card['name']}: {card['summary']}", "",
             f"Load it: `tf_ada.pretrained.load({card['name']!r})`, or "
             f"`tf-ada reconstruct IN.wav OUT.wav --pretrained {card['name']}`.", "",
             "| | |", "|---|---|",
             f"| command | `{card['command']}` ({card['command_source']}) |",
             f"| total steps | {card['steps']:,} (held-out numbers at step {card['eval_step']:,}) |",
             f"| corpus hash (data and split) | `{card['corpus_hash']}`, held-out split `{card['eval_split']}` |",
             f"| wall time | {hours} |",
             f"| held-out NLL, 1-s sequences (paper protocol) | {_pm(card, 'eval_nll_paper')} nats/timestep |",
             f"| held-out NLL, full context | {_pm(card, 'eval_nll_full')} nats/timestep |",
             f"| perplexity, 1-s sequences | {_pm(card, 'eval_perplexity_paper', 1)} |",
             f"| perplexity, full context (pooled) | {_pm(card, 'eval_perplexity_full', 1)} |",
             f"| codes in use (held-out, full context) | {ev.get('eval_codes_in_use_full', '-')} |",
             f"| held-out windows / works | {ev.get('eval_sequences_paper', '-')} / {ev.get('eval_works', '-')} |",
             f"| training split NLL, 1-s sequences | {_pm(card, 'train_nll_paper')} |",
             f"| weights | {card['weights']['dtype']}, {card['weights']['n_parameters']:,} values, "
             f"{card['weights']['bytes'] / 1e6:.2f} MB (Polyak averages only) |",
             f"| check | NLL {card['check']['nll']:.5f} on {card['check']['n_samples']} held-out samples of "
             f"`{card['check']['recording']}` from sample {card['check']['start']} (tolerance "
             f"{card['check']['tolerance']:g}) |", "",
             "Values are ± one standard error clustered by work (tf_ada/evaluation.py).", "",
             f"![held-out NLL against step]({CURVE_PNG})", ""]
    for protocol, t in card.get("trend", {}).items():
        key = [k for k in t if k.startswith("drop_per_")][0]
        lines.append(f"- Trend ({protocol}): held-out NLL fell {t[key]:.4f} per {key[9:].replace('_', ' ')} "
                     f"between steps {t['from_step']:,} and {t['to_step']:,} (SE {t['se'] or 0:.4f}): "
                     + ("still falling by more than one SE." if t["still_falling"] else
                        "no longer falling by more than one SE."))
    if card.get("notes"):
        lines += ["", card["notes"]]
    return "\n".join(lines) + "\n"


def main(argv=None, prog: str = "python -m tf_ada.pretrained") -> int:
    import argparse

    from tf_ada.cli import HelpFormatter
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the shipped models and their held-out NLL", formatter_class=HelpFormatter)
    p = sub.add_parser("export", help="write a shipped model from a finished run folder", formatter_class=HelpFormatter)
    p.add_argument("run_dir", help="the finished run folder (experiment.json, checkpoints, eval.json)")
    p.add_argument("name", help=f"e.g. {', '.join(MODELS)}")
    p.add_argument("--data", required=True, help="the prepared data it was trained on")
    p.add_argument("--root", help="registry folder (default: the tf_ada/pretrained package folder)")
    p.add_argument("--command", dest="train_command", help="the exact training command (default: reconstructed)")
    p.add_argument("--float16", action="store_true", help="store the weights as float16")
    p.add_argument("--allow-stale-eval", action="store_true",
                   help="accept an eval.json from another step than the newest checkpoint")
    p.add_argument("--notes", default="", help="text added to the model card")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for name in sorted(set(MODELS) | set(available())):
                if name in available():
                    card = read_card(name)
                    print(f"{name}: {card['summary']}; {card['steps']:,} steps; held-out NLL "
                          f"{_pm(card, 'eval_nll_paper')} (1 s), {_pm(card, 'eval_nll_full')} (full context)")
                else:
                    print(f"{name}: not shipped in this checkout")
            return 0
        export_run(args.run_dir, args.name, args.data, root=args.root, command=args.train_command,
                   float16=args.float16, allow_stale_eval=args.allow_stale_eval, notes=args.notes)
        return 0
    except RunError as e:
        print(f"tf_ada.pretrained: error: {e}", file=sys.stderr)
        return 2


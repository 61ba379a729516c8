"""Codebook health of an ADA while it trains: does the bottleneck carry information, and when do
codes die?

The VQ-VAE (sec. 3.1) can collapse: few codes in use, the rest never chosen again. The paper
reports this as a reason for PBT in the second level (sec. 4.3). This tool separates that
phenomenon from faults of an implementation by recording, for every training step, the scalars
the Trainer already computes (codes in use in the batch, batch perplexity, commitment and
quantisation errors, NLL), and every `probe_every` steps, on one fixed batch of training audio:

  query_rms          root-mean-square of the encoder's queries q (their scale)
  query_spread       RMS distance of the queries from their mean (how much they vary)
  codebook_rms       RMS of all codebook vectors;  used_codebook_rms: of the codes in use
  nearest_distance   RMS distance from each query to its nearest code (the quantisation error)
  probe_codes_in_use, probe_perplexity
  nll_codes          NLL of the probe batch with its codes
  nll_constant       NLL with every code replaced by the probe's most used code
  reliance           nll_constant - nll_codes: nats per timestep the local model gets from the codes

Usage:
  python -m analysis.codebook_health --row 1.2 --scale cpu --data runs/corpus/data --out runs/health-1.2 \
      --steps 300 [--set beta=0.25 ...]

Writes OUT/health.jsonl while it trains, then OUT/health.csv (one row per step; probe columns
filled every probe_every steps), OUT/health.png, and the run folder of the training itself (resumable like any run).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from tf_ada import configs, data, fileio
from tf_ada.layers.quantizers import perplexity_from_counts

PROBE_COLUMNS = ("query_rms", "query_spread", "codebook_rms", "used_codebook_rms", "nearest_distance",
                 "probe_codes_in_use", "probe_perplexity", "nll_codes", "nll_constant", "reliance")


def probe(ada, x: tf.Tensor) -> dict:
    """The probe measures (see the module docstring) of an ADA on mu-law audio x int32 `[B, T]`."""
    q = ada.encoder(x)  # [B, T', D]
    if hasattr(ada.quantizer, "normalize"):
        q = ada.quantizer.normalize(q)  # the queries as they are quantised (running statistics)
    flat = tf.reshape(q, [-1, q.shape[-1]])
    out = ada(x, training=False)
    codes = tf.reshape(out.codes, [-1])
    counts = tf.math.bincount(codes, minlength=ada.config.n_codes, dtype=tf.float32)
    constant = tf.fill(tf.shape(out.codes), tf.cast(tf.argmax(counts), tf.int32))
    logits = ada.local(x, ada.biases(constant), bias_hop=ada.config.hop)
    from tf_ada.models.wavenet import nll_per_timestep
    nll_constant = float(tf.reduce_mean(nll_per_timestep(x, logits)))
    result = {"probe_codes_in_use": int(tf.reduce_sum(tf.cast(counts > 0, tf.int32))),
              "probe_perplexity": float(perplexity_from_counts(counts)),
              "nll_codes": float(out.nll), "nll_constant": nll_constant,
              "reliance": nll_constant - float(out.nll),
              "query_rms": float(tf.sqrt(tf.reduce_mean(tf.square(flat)))),
              "query_spread": float(tf.sqrt(tf.reduce_mean(tf.reduce_sum(
                  tf.square(flat - tf.reduce_mean(flat, 0)), -1)) / float(flat.shape[-1])))}
    quantizer = ada.quantizer
    if hasattr(quantizer, "codebook"):
        e = quantizer.codebook.numpy()
        used = counts.numpy() > 0
        dist = quantizer.distances(flat).numpy().min(1)
        result.update(codebook_rms=float(np.sqrt(np.mean(e ** 2))),
                      used_codebook_rms=float(np.sqrt(np.mean(e[used] ** 2))),
                      nearest_distance=float(np.sqrt(np.mean(np.maximum(dist, 0.0)) / e.shape[1])))
    return result


def run(experiment, data_dir: str, out_dir: str, steps: int, probe_every: int = 10, log=print) -> list:
    """Trains `experiment` into out_dir/run for `steps` steps, recording the health measures.
    Returns the rows written to out_dir/health.csv."""
    from tf_ada.train import Trainer
    os.makedirs(out_dir, exist_ok=True)
    trainer = Trainer(experiment, data_dir, os.path.join(out_dir, "run"), log=log)
    cfg = experiment.train
    x_probe = next(iter(data.excerpt_dataset(data_dir, n_samples=cfg.n_samples, batch_size=cfg.batch_size,
                                             seed=12345, split="train")))
    rows = []
    stream = open(os.path.join(out_dir, "health.jsonl"), "a")  # one JSON line per step, as it trains

    def on_step(step, scalars):
        row = {"step": step, **{k: float(v) for k, v in scalars.items()}}
        if step % probe_every == 0 or step == 1:
            row.update(probe(trainer.model, x_probe))
            log("health: step {step} codes in batch {c:.0f} probe {p} ppl {pp:.1f} q_rms {q:.3f} spread {s:.3f} "
                "code_rms {e} reliance {r:.4f}".format(
                    step=step, c=row.get("codes_in_use", 0), p=row["probe_codes_in_use"], pp=row["probe_perplexity"],
                    q=row["query_rms"], s=row["query_spread"], e=f"{row.get('codebook_rms', float('nan')):.3f}",
                    r=row["reliance"]))
        rows.append(row)
        stream.write(json.dumps(row) + "\n")
        stream.flush()

    try:
        trainer.train(steps=steps, on_step=on_step)
    finally:
        stream.close()
    columns = sorted({k for r in rows for k in r}, key=lambda k: (k != "step", k in PROBE_COLUMNS, k))
    with open(os.path.join(out_dir, "health.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)
    fileio.atomic_write_json(os.path.join(out_dir, "health.json"),
                             {"experiment": experiment.to_dict(), "data": os.path.abspath(data_dir)})
    plot(rows, os.path.join(out_dir, "health.png"), title=experiment.name)
    return rows


def plot(rows: list, path: str, title: str = "") -> None:
    """Codes in use and perplexity, scales, and reliance against step."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = [r["step"] for r in rows]
    probed = [r for r in rows if "reliance" in r]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax = axes[0]
    ax.plot(steps, [r.get("codes_in_use", np.nan) for r in rows], label="codes in use (batch)")
    ax.plot(steps, [r.get("perplexity", np.nan) for r in rows], label="perplexity (batch)")
    ax.set_xlabel("step")
    ax.set_yscale("log")
    ax.legend()
    ax = axes[1]
    for k in ("query_rms", "query_spread", "codebook_rms", "used_codebook_rms", "nearest_distance"):
        ax.plot([r["step"] for r in probed], [r.get(k, np.nan) for r in probed], label=k)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.legend()
    ax = axes[2]
    ax.plot([r["step"] for r in probed], [r["reliance"] for r in probed], label="NLL(constant codes) - NLL(codes)")
    ax.set_xlabel("step")
    ax.set_ylabel("nats / timestep")
    ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def read_rows(out_dir: str) -> list:
    """The per-step rows a run wrote (health.jsonl), in step order."""
    with open(os.path.join(out_dir, "health.jsonl")) as f:
        rows = {}
        for line in f:
            row = json.loads(line)
            rows[row["step"]] = row  # a resumed run repeats no step, but keep the last if it did
    return [rows[s] for s in sorted(rows)]


def plot_compare(runs: dict, path: str) -> None:
    """Codes in use per batch and the reliance on the codes against step, one line per run
    ({label: folder})."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for label, folder in runs.items():
        rows = read_rows(folder)
        axes[0].plot([r["step"] for r in rows], [r["codes_in_use"] for r in rows], label=label, lw=1)
        probed = [r for r in rows if "reliance" in r]
        axes[1].plot([r["step"] for r in probed], [r["reliance"] for r in probed], label=label, marker=".", lw=1)
    axes[0].set(xlabel="step", ylabel="codes in use in the training batch", yscale="log")
    axes[1].set(xlabel="step", ylabel="NLL(constant code) - NLL(codes), nats/timestep")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def tensorboard_scalars(run_dir: str, tags=("train/codes_in_use", "train/perplexity")) -> dict:
    """{tag: [(step, value), ...]} read from a Trainer run folder's TensorBoard events (the train
    scalars are means over each `log_every` interval)."""
    from tf_ada.runs import tensorboard_events
    out = {tag: {} for tag in tags}
    for event in tensorboard_events(os.path.join(run_dir, "tensorboard")):
        for value in event.summary.value:
            if value.tag in out:  # a resumed run's repeated step keeps the newest
                out[value.tag][int(event.step)] = float(tf.make_ndarray(value.tensor))
    return {tag: sorted(points.items()) for tag, points in out.items()}


def plot_rows(runs: dict, path: str) -> None:
    """Codes in use and perplexity of the training batches against step for Trainer run folders
    ({label: run folder}), e.g. Table 1's VQ-VAE rows."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for label, folder in runs.items():
        curves = tensorboard_scalars(folder)
        for ax, tag in zip(axes, ("train/codes_in_use", "train/perplexity")):
            points = curves[tag]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=label)
    axes[0].set(xlabel="step", ylabel="codes in use per batch (mean over 50 steps)", yscale="log")
    axes[1].set(xlabel="step", ylabel="batch perplexity (mean over 50 steps)", yscale="log")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv=None) -> int:
    from tf_ada.cli import HelpFormatter
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--row", default="1.2", help="Table 1 row (an ADA)")
    p.add_argument("--scale", default="cpu", choices=configs.SCALES, help="the row's model and training sizes")
    p.add_argument("--data", required=True, help="prepared audio shards")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--steps", type=int, default=300, help="training steps")
    p.add_argument("--probe-every", type=int, default=10, help="steps between probes")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="ADAConfig fields to change (e.g. beta=0.1) or train.FIELD=VALUE")
    args = p.parse_args(argv)
    if args.steps < 1 or args.probe_every < 1:
        p.error("--steps and --probe-every must be positive")
    exp = configs.table1_row(args.row, args.scale)
    model_changes, train_changes = {}, {}
    if any(item.startswith("code_channels=") for item in args.set):  # resizes encoder and modulator
        d = int(next(item for item in args.set if item.startswith("code_channels=")).partition("=")[2])
        args.set = [item for item in args.set if not item.startswith("code_channels=")]
        m = exp.model
        rebuilt = configs.ada(args.scale, quantizer=m.quantizer, input_kind=m.encoder.input_kind, hop=m.hop,
                              name=m.name, code_channels=d)
        exp = dataclasses.replace(exp, model=rebuilt)
    for item in args.set:
        key, _, value = item.partition("=")
        if key.startswith("train."):
            train_changes[key[6:]] = _parse_value(value)
        else:
            model_changes[key] = _parse_value(value)
    exp = dataclasses.replace(exp, model=dataclasses.replace(exp.model, **model_changes),
                              train=dataclasses.replace(exp.train, **train_changes))
    run(exp, args.data, args.out, args.steps, args.probe_every)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Codes in use and perplexity against training step for trained VQ-VAE rows (issue 9's curves).

    python -m analysis.codebook_curves RUN [RUN ...] --out docs/codebook_cpu_rows.png [--label NAME ...]

Reads each run folder's TensorBoard scalars (`codes_in_use` and `perplexity` of the training batch,
logged every `log_every` steps) and its evaluation history (`eval_history.jsonl`: held-out codes in
use and perplexity under both protocols), and plots both against step, one colour per run. Prints
the same numbers as a table (markdown), so a report can quote them.
"""
from __future__ import annotations

import argparse
import os
import sys


def batch_curves(run_dir: str) -> dict:
    """{"codes_in_use" | "perplexity": [(step, value)]} of the training batch (TensorBoard's
    train/ scalars, read by `codebook_health.tensorboard_scalars`)."""
    from analysis.codebook_health import tensorboard_scalars
    return {tag.split("/")[-1]: points for tag, points in tensorboard_scalars(run_dir).items()}


def eval_points(run_dir: str) -> list:
    """The run's evaluations (eval_history.jsonl, else eval.json), step order."""
    from tf_ada.train import read_eval_history
    history = read_eval_history(run_dir)
    if not history and os.path.isfile(os.path.join(run_dir, "eval.json")):
        import json
        with open(os.path.join(run_dir, "eval.json")) as f:
            history = [json.load(f)]
    return history


def markdown(runs: dict) -> str:
    lines = ["| run | step | held-out codes in use | perplexity (1 s) | perplexity (full context) | eval NLL (1 s) |",
             "|---|---|---|---|---|---|"]
    nan = float("nan")

    def pm(h, key, digits):
        return f"{h.get(key, nan):.{digits}f} ± {h.get(key + '_se', 0):.{digits}f}"

    for label, (_, evals) in runs.items():
        for h in evals:
            lines.append(f"| {label} | {h['step']} | {h.get('eval_codes_in_use_full', '-')} | "
                         f"{pm(h, 'eval_perplexity_paper', 1)} | {pm(h, 'eval_perplexity_full', 1)} | "
                         f"{pm(h, 'eval_nll_paper', 3)} |")
    return "\n".join(lines)


def plot(runs: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, (label, (curves, evals)) in enumerate(runs.items()):
        colour = f"C{i}"
        for ax, tag, key in ((axes[0], "codes_in_use", "eval_codes_in_use_full"),
                             (axes[1], "perplexity", "eval_perplexity_full")):
            pts = curves.get(tag, [])
            if pts:
                ax.plot([s for s, _ in pts], [v for _, v in pts], color=colour, lw=1, alpha=0.7,
                        label=f"{label}: training batch")
            ev = [(h["step"], h[key]) for h in evals if h.get(key) is not None]
            if ev:
                ax.plot([s for s, _ in ev], [v for _, v in ev], "o--", color=colour, ms=5,
                        label=f"{label}: held-out (pooled)")
    axes[0].axhline(128, color="grey", ls=":", lw=1)
    axes[0].set_title("codes in use (issue 9 target: 128 held-out)")
    axes[1].axhline(64, color="grey", ls=":", lw=1)
    axes[1].set_title("perplexity (issue 9 target: 64 held-out; paper #1.2: 227)")
    for ax in axes:
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders of VQ-VAE (or AMAE) rows")
    p.add_argument("--label", nargs="*", help="one label per run (default: the folder names)")
    p.add_argument("--out", required=True, help="the PNG to write")
    args = p.parse_args(argv)
    labels = args.label or [os.path.basename(os.path.normpath(r)) for r in args.runs]
    if len(labels) != len(args.runs):
        p.error(f"--label: {len(labels)} labels for {len(args.runs)} runs")
    for r in args.runs:
        if not os.path.isdir(r):
            p.error(f"{r}: not a run folder")
    runs = {label: (batch_curves(r), eval_points(r)) for label, r in zip(labels, args.runs)}
    plot(runs, args.out)
    print(markdown(runs))
    print(f"codebook_curves: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does mixed_bfloat16 train as well as float32? The acceptance test of issue 12, target 2:

    "on the cpu-scale configurations, the mean training loss over steps 400-500 across 2 seeds lies
    within 2 standard errors of float32's"

    python -m analysis.precision_check --row 1.2 --scale cpu --data runs/corpus/data \\
        --out runs/precision-check [--steps 500] [--seeds 0,1] [--window 400,500] [--block 10]

Trains the Table 1 row's experiment (`configs.table1_row(row, scale, steps=steps)`) once per
precision ("float32", "mixed_bfloat16") and seed, each into its own run folder
OUT/{precision}-s{seed}, with the `Trainer` (no evaluation), and records every step's training loss
in OUT/{precision}-s{seed}/losses.jsonl (one JSON line per step: step, loss, wall seconds since
the previous step). A fresh run's initial weights are seeded with `keras.utils.set_random_seed(seed)`,
so both precisions of a seed start from the same weights and (the Trainer's data seed being
`train.seed`) read the same batches.

Resuming: an interrupted command, run again, resumes every run from its last checkpoint (the
Trainer's); losses.jsonl keeps only the steps up to the restored one (steps recorded after the
last checkpoint are trained again and recorded anew). A finished run is not trained again.

Statistics (`window_statistics`), per precision: the mean training loss over steps in
(window_start, window_end], pooled over seeds, and its standard error. Per-step losses are
autocorrelated (consecutive steps share weights and the loss moves slowly), so the SE of a per-step
mean would be too small; instead each seed's window is split into blocks of `--block` (10)
consecutive steps, each block's mean taken, and

    SE = std(block means, ddof=1) / sqrt(number of blocks over all seeds)

(the pooled mean is the mean of the block means, the blocks being of equal size). The verdict
compares difference = mean(mixed_bfloat16) - mean(float32) with its SE sqrt(se_a^2 + se_b^2):
|difference| <= 2 SE: "within 2 SE: accepted", else "beyond 2 SE: not accepted". (The two
precisions share seeds, initial weights and batches; treating them as independent, as this SE
does, errs on the side of accepting.)

Writes OUT/precision_check.json (per run: window mean, steps, wall minutes, timesteps/s; per
precision: mean, se, n_blocks; the difference, its SE and the verdict) and OUT/precision_check.md
(tables, the verdict line and the command), and prints the markdown. Exit status: 0 accepted, 1 not
accepted (including a run that diverged), 2 the output folder is in use by another job.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from typing import Callable, Optional

import numpy as np

from tf_ada import configs, fileio

PRECISIONS = ("float32", "mixed_bfloat16")  # (reference, candidate), as tf_ada.train.PRECISIONS
LOSSES_FILE = "losses.jsonl"
JSON_FILE = "precision_check.json"
MARKDOWN_FILE = "precision_check.md"
N_SE = 2.0  # the acceptance bound, in standard errors of the difference

Losses = dict  # {precision: {seed: {step: loss}}}


# --- statistics -------------------------------------------------------------------------------------

def window_steps(window: tuple[int, int]) -> list[int]:
    """The steps of the half-open window (start, end]: start + 1 ... end."""
    start, end = window
    return list(range(start + 1, end + 1))


def window_statistics(losses: Losses, window: tuple[int, int], block_steps: int = 10,
                      reference: str = PRECISIONS[0], candidate: str = PRECISIONS[1]) -> dict:
    """Means, block standard errors, the difference and the verdict (module docstring).

    Args:
      losses: {precision: {seed: {step: training loss}}}; every seed of both `reference` and
        `candidate` must hold every step of the window (other steps are ignored).
      window: (start, end): the steps start + 1 ... end; end - start a multiple of `block_steps`.
      block_steps: consecutive steps per block.

    Returns:
      {"per_run": {precision: {seed: window mean}},
       "per_precision": {precision: {"mean", "se", "n_blocks", "n_steps", "seeds"}},
       "difference" (candidate - reference), "difference_se", "difference_in_se",
       "within_bound" (|difference| <= 2 SE), "verdict"}

    Raises:
      ValueError: a bad window or block, a precision without seeds, a seed lacking window steps,
        or fewer than 2 blocks for a precision (no SE).
    """
    start, end = window
    if not 0 <= start < end:
        raise ValueError(f"window must satisfy 0 <= start < end, got {window}")
    if block_steps < 1 or (end - start) % block_steps:
        raise ValueError(f"the window's {end - start} steps are not a whole number of {block_steps}-step blocks")
    steps = window_steps(window)
    per_run, per_precision = {}, {}
    for precision in (reference, candidate):
        seeds = losses.get(precision) or {}
        if not seeds:
            raise ValueError(f"no runs of {precision}")
        block_means_all, per_run[precision] = [], {}
        for seed, by_step in sorted(seeds.items()):
            missing = [s for s in steps if s not in by_step]
            if missing:
                raise ValueError(f"{precision} seed {seed} lacks {len(missing)} step(s) of the window "
                                 f"({missing[0]}{'...' if len(missing) > 1 else ''})")
            loss_per_step = np.asarray([by_step[s] for s in steps], np.float64)  # [n_steps]
            block_means = loss_per_step.reshape(-1, block_steps).mean(axis=1)  # [n_steps / block_steps]
            block_means_all.append(block_means)
            per_run[precision][seed] = float(loss_per_step.mean())
        block_means = np.concatenate(block_means_all)  # [n_blocks over all seeds]
        if block_means.size < 2:
            raise ValueError(f"{precision}: {block_means.size} block(s); a standard error needs at least 2")
        per_precision[precision] = {
            "mean": float(block_means.mean()),
            "se": float(block_means.std(ddof=1) / math.sqrt(block_means.size)),
            "n_blocks": int(block_means.size), "n_steps": int(block_means.size * block_steps),
            "seeds": sorted(seeds)}
    a, b = per_precision[candidate], per_precision[reference]
    difference = a["mean"] - b["mean"]
    difference_se = math.sqrt(a["se"] ** 2 + b["se"] ** 2)
    within = abs(difference) <= N_SE * difference_se
    return {"per_run": per_run, "per_precision": per_precision, "reference": reference, "candidate": candidate,
            "difference": difference, "difference_se": difference_se,
            "difference_in_se": difference / difference_se if difference_se > 0 else None,
            "within_bound": bool(within),
            "verdict": f"within {N_SE:g} SE: accepted" if within else f"beyond {N_SE:g} SE: not accepted"}


# --- loss records -----------------------------------------------------------------------------------

def read_records(path: str) -> list[dict]:
    """The records of a losses.jsonl in step order, one per step (a step recorded twice: the later
    line); an unreadable line (a write cut off by a crash) is skipped. [] if there is no file."""
    if not os.path.isfile(path):
        return []
    by_step = {}
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
                by_step[int(record["step"])] = record
            except (ValueError, KeyError, TypeError):
                continue
    return [by_step[s] for s in sorted(by_step)]


def keep_records_up_to(path: str, step: int) -> list[dict]:
    """Rewrites losses.jsonl (atomically) to hold only its records of steps <= `step`, the step a
    resumed Trainer restored (later ones were trained after its last checkpoint and will be trained
    again), deduplicated and in step order; returns them."""
    records = [r for r in read_records(path) if r["step"] <= step]
    if os.path.exists(path) or records:
        fileio.atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))
    return records


def run_summary(records: list[dict], window: tuple[int, int], timesteps_per_step: int) -> dict:
    """A run's numbers from its records: final step, window mean, wall minutes and timesteps/s over
    the recorded steps (each step's seconds count from the previous step's end, so they include the
    first step's compilation and the checkpoint saves; the median step gives the steady rate)."""
    steps = set(window_steps(window))
    in_window = [r["loss"] for r in records if r["step"] in steps]
    seconds_per_step = np.asarray([r.get("seconds", math.nan) for r in records], np.float64)  # [n_records]
    known = seconds_per_step[np.isfinite(seconds_per_step)]
    total_s = float(known.sum()) if known.size else math.nan
    return {"steps": records[-1]["step"] if records else 0, "recorded_steps": len(records),
            "window_mean": float(np.mean(in_window)) if in_window else None,
            "window_steps_recorded": len(in_window),
            "minutes": round(total_s / 60, 3) if known.size else None,
            "timesteps_per_s": round(known.size * timesteps_per_step / total_s, 1) if known.size and total_s > 0
            else None,
            "timesteps_per_s_median_step": round(timesteps_per_step / float(np.median(known)), 1)
            if known.size and np.median(known) > 0 else None}


# --- training ---------------------------------------------------------------------------------------

def run_dir_name(precision: str, seed: int) -> str:
    return f"{precision}-s{seed}"


def train_run(experiment, precision: str, seed: int, data_dir: str, out: str, log: Callable[[str], None] = print
              ) -> dict:
    """Trains (or resumes, or finds finished) one run into OUT/{precision}-s{seed}, recording each
    step's loss in its losses.jsonl. Returns {"run_dir", "records", "diverged" (None or the error)}."""
    import keras
    from tf_ada.train import DivergenceError, Trainer
    experiment = configs.override(experiment, {"train.precision": precision, "train.seed": seed,
                                               "name": f"{experiment.name}_{precision}_s{seed}"})
    run_dir = os.path.join(out, run_dir_name(precision, seed))
    path = os.path.join(run_dir, LOSSES_FILE)
    keras.utils.set_random_seed(seed)  # the initial weights of a fresh run (a resumed one restores them)
    trainer = Trainer(experiment, data_dir, run_dir, log=log)
    records = keep_records_up_to(path, trainer.current_step)
    if records and records[-1]["step"] < trainer.current_step:
        log(f"precision_check: {path} ends at step {records[-1]['step']}, its checkpoint at "
            f"{trainer.current_step}: the steps between have no loss recorded")
    last = [time.monotonic()]

    with open(path, "a") as f:
        def on_step(step: int, scalars: dict) -> None:
            now = time.monotonic()
            record = {"step": int(step), "loss": float(scalars["loss"]), "seconds": round(now - last[0], 4)}
            f.write(json.dumps(record) + "\n")
            f.flush()  # in the kernel at once: a killed process loses at most the line being written
            last[0] = now
            records.append(record)

        try:
            trainer.train(evaluate=False, on_step=on_step)
            diverged = None
        except DivergenceError as e:
            log(f"precision_check: {run_dir_name(precision, seed)} diverged: {e}")
            diverged = {"step": trainer.current_step, "error": str(e)}
    return {"run_dir": run_dir, "records": records, "diverged": diverged}


# --- report -----------------------------------------------------------------------------------------

def _fmt(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(result: dict) -> str:
    """precision_check.md: the runs, the pooled means with their SEs, the verdict and the command."""
    start, end = result["window"]
    lines = [f"# Precision check (issue 12, target 2): Table 1 row {result['row']}, {result['scale']} scale", "",
             f"Mean training loss over steps ({start}, {end}], pooled over seeds; SE from {result['block_steps']}-step "
             f"block means (std(ddof=1) / sqrt(blocks)).", "",
             "| run | precision | seed | steps | mean loss | minutes | timesteps/s | timesteps/s (median step) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, run in result["runs"].items():
        note = f" (diverged at step {run['diverged']['step']})" if run.get("diverged") else ""
        lines.append(f"| {name}{note} | {run['precision']} | {run['seed']} | {run['steps']} | "
                     f"{_fmt(run['window_mean'])} | {_fmt(run['minutes'], 1)} | {_fmt(run['timesteps_per_s'], 0)} | "
                     f"{_fmt(run['timesteps_per_s_median_step'], 0)} |")
    stats = result.get("statistics")
    if stats:
        lines += ["", "| precision | seeds | mean loss | SE | blocks |", "|---|---|---|---|---|"]
        for precision, s in stats["per_precision"].items():
            lines.append(f"| {precision} | {','.join(map(str, s['seeds']))} | {s['mean']:.4f} | {s['se']:.4f} | "
                         f"{s['n_blocks']} |")
    lines += ["", f"**{result['verdict_line']}**", "", "```", result["command"], "```", ""]
    return "\n".join(lines)


def verdict_line(stats: Optional[dict], problem: Optional[str] = None) -> str:
    if stats is None:
        return f"not accepted: {problem}"
    in_se = "" if stats["difference_in_se"] is None else f"; {stats['difference_in_se']:+.2f} SE"
    return (f"{stats['candidate']} - {stats['reference']}: {stats['difference']:+.4f} ± {stats['difference_se']:.4f} "
            f"(SE{in_se}): {stats['verdict']}")


def check(row: str, scale: str, data_dir: str, out: str, steps: int, seeds: list[int], window: tuple[int, int],
          block_steps: int, command: str, log: Callable[[str], None] = print) -> dict:
    """Trains every (precision, seed) run, then writes and returns precision_check.json's content."""
    experiment = configs.table1_row(row, scale, steps=steps)
    timesteps_per_step = experiment.train.batch_size * experiment.train.n_samples
    runs, losses, problems = {}, {}, []
    for precision in PRECISIONS:
        for seed in seeds:
            trained = train_run(experiment, precision, seed, data_dir, out, log=log)
            name = run_dir_name(precision, seed)
            runs[name] = {"precision": precision, "seed": seed, "run_dir": os.path.abspath(trained["run_dir"]),
                          **run_summary(trained["records"], window, timesteps_per_step),
                          "diverged": trained["diverged"]}
            if trained["diverged"]:
                problems.append(f"{name} diverged at step {trained['diverged']['step']}")
            losses.setdefault(precision, {})[seed] = {r["step"]: r["loss"] for r in trained["records"]}
    stats = None
    if not problems:
        try:
            stats = window_statistics(losses, window, block_steps)
        except ValueError as e:  # e.g. a losses.jsonl that lost records the checkpoints hold
            problems.append(f"{e} (delete the run folder to train it again)")
    result = {"issue": "12, target 2", "row": row, "scale": scale, "data": os.path.abspath(data_dir),
              "steps": steps, "seeds": seeds, "window": list(window), "block_steps": block_steps,
              "timesteps_per_step": timesteps_per_step, "runs": runs, "statistics": stats,
              "accepted": bool(stats and stats["within_bound"]),
              "verdict_line": verdict_line(stats, "; ".join(problems)), "command": command}
    if stats:
        result.update({k: stats[k] for k in ("difference", "difference_se", "verdict")})
        result["per_precision"] = stats["per_precision"]
    fileio.atomic_write_json(os.path.join(out, JSON_FILE), result)
    fileio.atomic_write_text(os.path.join(out, MARKDOWN_FILE), markdown(result))
    return result


# --- command line -----------------------------------------------------------------------------------

def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated non-negative integers (e.g. 0,1), got {text!r}")
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct non-negative integers, got {text!r}")
    return seeds


def _parse_window(text: str) -> tuple[int, int]:
    parts = text.split(",")
    try:
        start, end = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START,END (steps START+1 ... END, e.g. 400,500), got {text!r}")
    if not 0 <= start < end:
        raise argparse.ArgumentTypeError(f"expected 0 <= START < END, got {text!r}")
    return start, end


def main(argv: Optional[list[str]] = None) -> int:
    from tf_ada.cli import HelpFormatter
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m analysis.precision_check", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--row", default="1.2", help=f"Table 1 row ({', '.join(configs.TABLE1_ROWS)})")
    parser.add_argument("--scale", default="cpu", choices=configs.SCALES, help="model and training sizes")
    parser.add_argument("--data", required=True, help="audio shard folder (tf-ada prepare)")
    parser.add_argument("--out", default=os.path.join("runs", "precision-check"),
                        help="output folder: one run folder per precision and seed, the JSON and markdown")
    parser.add_argument("--steps", type=int, default=500, help="training steps of every run")
    parser.add_argument("--seeds", type=_parse_seeds, default=[0, 1], help="comma-separated seeds (default: 0,1)")
    parser.add_argument("--window", type=_parse_window, default=(400, 500),
                        help="START,END: the mean is over steps START+1 ... END (default: 400,500)")
    parser.add_argument("--block", type=int, default=10, help="steps per block of the block standard error")
    args = parser.parse_args(argv)
    if args.row not in configs.TABLE1_ROWS:
        parser.error(f"--row: unknown row {args.row!r}; choose from {', '.join(configs.TABLE1_ROWS)}")
    if args.steps < 1:
        parser.error(f"--steps must be a positive integer, got {args.steps}")
    start, end = args.window
    if end > args.steps:
        parser.error(f"--window: END ({end}) must be at most --steps ({args.steps})")
    if args.block < 1:
        parser.error(f"--block must be a positive integer, got {args.block}")
    if (end - start) % args.block:
        parser.error(f"--window: its {end - start} steps are not a whole number of --block {args.block}-step blocks")
    if (end - start) // args.block * len(args.seeds) < 2:
        parser.error("--window, --block and --seeds give fewer than 2 blocks per precision: no standard error")
    if not os.path.isdir(args.data):
        parser.error(f"--data: {args.data} is not a folder")
    command = shlex.join(["python", "-m", "analysis.precision_check", *argv])
    os.makedirs(args.out, exist_ok=True)
    try:
        with fileio.FolderLock(args.out, "precision check"):
            result = check(args.row, args.scale, args.data, args.out, args.steps, args.seeds, args.window,
                           args.block, command)
    except fileio.FolderBusyError as e:
        print(f"precision_check: {e}", file=sys.stderr)
        return 2
    print(markdown(result))
    return 0 if result["accepted"] else 1


if __name__ == "__main__":
    sys.exit(main())

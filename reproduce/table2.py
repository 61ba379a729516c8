"""Table 2 (sec. 4.3): second-level ADAs on the codes of #1.2, PBT for the VQ-VAE, our rows beside the paper's.

    python -m reproduce.table2 --scale tiny|cpu|paper [--first-level RUN | --pretrained NAME]
        [--data DIR] [--codes DIR] [--out DIR] [--steps N] [--rows 2.1,2.2,...] [--seeds 3]
    python -m reproduce.table2 --scale cpu --dry-run      # costs of every run, nothing trained

Stages, each resumable (run the same command again; finished runs are skipped):
  1. The first level: `--first-level RUN` (a row-1.2 run folder) or `--pretrained NAME`; default the
     shipped `1.2-SCALE` if there is one, else row 1.2 trained by reproduce/table1.py into OUT/first_level.
  2. The code corpus: every recording of DATA encoded by the first level (Polyak weights, full
     context; `tf_ada.encode`) into OUT/codes (or `--codes`).
  3. Runs (`--rows`): 2.1 and the AMAE rows 2.3-2.6 with the project `Trainer`; 2.2 as a PBT
     population (`tf_ada.pbt`, `pbt.pbt_schedule(scale)`: cpu 6 members, exploit/explore every 100
     steps after 200), its best member evaluated as the row; "2.2-nopbt": the VQ-VAE of 2.2 without
     PBT over `--seeds` seeds; "2.4-seeds": the AMAE of 2.4 over the same seeds (2.4 is seed 0);
     "2.2-rf128": a PBT VQ-VAE with decoder RF 128 (the text: "VQ-VAE models with larger decoder RFs do
     not converge, even with PBT").
  4. Every ADA row: held-out first-level code excerpts reconstructed by the second level and
     rendered to audio by the first level's decoder (codes -> first-level codes -> audio), with the
     share of first-level codes reconstructed exactly (`tf_ada.encode.render_through_levels`).
  5. OUT/table2.md and OUT/table2.csv: the paper's numbers beside ours (± work-clustered SEs), minutes
     per run, convergence per run and the claims' verdicts (`tf_ada.evaluation.verdict` through
     reproduce/report.py).

"Converges" (`CONVERGENCE`, fixed before any run): (1) the training loss stayed finite (no
`DivergenceError`; for PBT, the population ended with a member that never diverged), (2) the held-out
perplexity (full context, pooled) is above 64, a quarter of the codes, and (3) the held-out NLL (1-s
protocol) is at most 1.05 x that of the best run with the same decoder RF (any quantiser, with or
without PBT). A run *does not converge* when (1) fails or (2) or (3) fails beyond 2 SE; it
*converges* when (1) holds and (2) and (3) hold beyond 2 SE; else it is *undecided*.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

from reproduce import paper, report
from tf_ada import configs, data, fileio, ops
from tf_ada import evaluation as ev

SEED_RUNS = {"2.2-nopbt": "2.2", "2.4-seeds": "2.4"}  # run group -> the row whose model it repeats
RUN_GROUPS = list(configs.TABLE2_ROWS) + list(SEED_RUNS) + list(configs.TABLE2_VARIANTS)
PBT_ROWS = ("2.2", "2.2-rf128")
CONVERGED, NOT_CONVERGED, UNDECIDED = "converges", "does not converge", "undecided"
PERPLEXITY_FLOOR = 64.0
NLL_TOLERANCE = 1.05
CONVERGENCE = (
    "A run **converges** when (1) its training loss stayed finite (no non-finite step; for PBT, the "
    "population ended with a member that never diverged), (2) its held-out perplexity (full context, "
    f"pooled) is above {PERPLEXITY_FLOOR:.0f} (a quarter of the codes) and (3) its held-out NLL (1-s "
    f"protocol) is at most {NLL_TOLERANCE} x that of the best run with the same decoder RF (any quantiser, "
    "with or without PBT). It **does not converge** when (1) fails, or (2) or (3) fails beyond 2 standard "
    "errors (work-clustered; (3) paired on the same windows); it is **undecided** otherwise.")


# --- stages 1 and 2: the first level and its code corpus ------------------------------------------------

def first_level(scale: str, data_dir: str, out: str, run_dir=None, pretrained_name=None, log=print):
    """(first-level ADA with Polyak weights, its source description for the code manifest)."""
    from tf_ada import encode, pretrained
    if run_dir:
        return encode.source_of_run(run_dir)
    name = pretrained_name or (f"1.2-{scale}" if f"1.2-{scale}" in pretrained.available() else None)
    if name:
        return encode.source_of_pretrained(name)
    from reproduce import table1
    log(f"table2: no first level given and no shipped 1.2-{scale}: training row 1.2 at {scale} scale")
    row = table1.run_row("1.2", scale, data_dir, os.path.join(out, "first_level"), None, log=log)
    return encode.source_of_run(row["run_dir"])


def code_corpus(model, source: dict, data_dir: str, codes_dir: str, log=print) -> str:
    from tf_ada import encode
    encode.encode_corpus(model, source, data_dir, codes_dir, log=log)
    return codes_dir


# --- stage 3: runs --------------------------------------------------------------------------------------

def _done(path: str, steps: int):
    if os.path.exists(path):
        with open(path) as f:
            result = json.load(f)
        if result.get("steps") == steps and (result.get("diverged") or "eval_nll_full" in result):
            if result.get("run_dir"):  # where it is now (recorded from a copy of the tree, say)
                result["run_dir"] = report.resolve_run_dir(result, path)
            return result
    return None


def _eval_fields(result: dict, evaluation_result: dict) -> dict:
    result.update({k: v for k, v in evaluation_result.items()
                   if k.startswith(("train_", "eval_")) or k == "corpus_hash"})
    result.update(train_nll=evaluation_result.get("train_nll"), eval_nll=evaluation_result.get("eval_nll"),
                  perplexity=evaluation_result.get("eval_perplexity"))
    return result


def run_trained(run_id: str, experiment, codes_dir: str, out: str, seed=None, log=print) -> dict:
    """Trains (or resumes, or reuses) one run with the `Trainer` and evaluates it (Polyak weights,
    both protocols); a non-finite loss is recorded as `diverged`. Returns its row.json."""
    import keras
    from tf_ada.train import DivergenceError, Trainer
    if seed is not None:
        experiment = configs.override(experiment, {"name": f"{experiment.name}_seed{seed}", "train.seed": seed})
    row_dir = os.path.join(out, experiment.name)
    done_path = os.path.join(row_dir, "row.json")
    done = _done(done_path, experiment.train.steps)
    if done:
        log(f"table2: {run_id} already done ({done_path})")
        return done
    if seed is not None:
        keras.utils.set_random_seed(seed)  # the initial weights of a fresh run (a resumed one restores them)
    result = {"run": run_id, "name": experiment.name, "run_dir": os.path.abspath(row_dir), "seed": seed,
              "steps": experiment.train.steps, "pbt": False,
              "decoder_rf": configs.decoder_receptive_field(experiment.model)}
    t0 = time.monotonic()
    trainer = Trainer(experiment, codes_dir, row_dir, log=log)
    try:
        evaluated = trainer.train()
    except DivergenceError as e:
        log(f"table2: {run_id} diverged: {e}")
        minutes, source = report.training_minutes(row_dir, (time.monotonic() - t0) / 60)
        result.update(diverged=True, error=str(e), diverged_step=trainer.current_step, minutes=minutes,
                      minutes_source=source)
        fileio.atomic_write_json(done_path, result)
        return result
    if "eval_nll_full" not in evaluated or evaluated.get("step") != trainer.current_step:
        evaluated = trainer.evaluate(final=True)
    minutes, source = report.training_minutes(row_dir, (time.monotonic() - t0) / 60)
    result.update(diverged=False, minutes=minutes, minutes_source=source,
                  eval_minutes=evaluated.get("eval_seconds", 0.0) / 60, checkpoint=trainer.manager.latest_checkpoint)
    _eval_fields(result, evaluated)
    fileio.atomic_write_json(done_path, result)
    return result


def run_pbt(run_id: str, experiment, codes_dir: str, out: str, scale: str, log=print) -> dict:
    """Trains (or resumes) a PBT population of `experiment` (`tf_ada.pbt.run_population`) and
    evaluates its best member (highest final fitness) as the run. Returns its row.json."""
    from tf_ada import pbt, runs
    from tf_ada.train import Trainer
    pop_dir = os.path.join(out, f"{experiment.name}_pbt")
    done_path = os.path.join(pop_dir, "row.json")
    done = _done(done_path, experiment.train.steps)
    if done:
        log(f"table2: {run_id} already done ({done_path})")
        return done
    config = pbt.pbt_schedule(scale)
    t0 = time.monotonic()
    lineage = pbt.run_population(experiment, codes_dir, pop_dir, config, log=log)
    events = lineage["events"]
    # every interval's seconds (lineage.json keeps them across interruptions), plus this invocation's rest
    intervals = sum(e.get("seconds") or 0.0 for e in events if e["kind"] == "interval") / 60
    result = {"run": run_id, "name": experiment.name, "steps": experiment.train.steps, "pbt": True,
              "population_dir": os.path.abspath(pop_dir),
              "decoder_rf": configs.decoder_receptive_field(experiment.model),
              "pbt_population": config.population, "pbt_stopped": lineage["stopped"],
              "pbt_diverged_intervals": sum(1 for e in events if e["kind"] == "interval" and e["diverged"]),
              "pbt_exploits": sum(1 for e in events if e["kind"] == "exploit"),
              "lineage_plot": os.path.join(os.path.abspath(pop_dir), pbt.PLOT_FILE)}
    try:
        best = pbt.best_member(pop_dir)
    except pbt.PBTError as e:
        result.update(diverged=True, error=str(e), minutes=intervals, minutes_source="lineage.json intervals")
        fileio.atomic_write_json(done_path, result)
        return result
    member_experiment = runs.read_experiment(os.path.join(best["folder"], "experiment.json"))
    trainer = Trainer(member_experiment, codes_dir, best["folder"], log=log)
    evaluated = trainer.evaluate(final=True)
    result.update(diverged=False, run_dir=os.path.abspath(best["folder"]), best_member=best["member"],
                  beta=best["beta"], gamma=best["gamma"], fitness=best["fitness"],
                  minutes=intervals + evaluated.get("eval_seconds", 0.0) / 60,
                  minutes_source="lineage.json intervals and the final evaluation",
                  session_minutes=(time.monotonic() - t0) / 60, eval_minutes=evaluated.get("eval_seconds", 0.0) / 60,
                  checkpoint=trainer.manager.latest_checkpoint)
    _eval_fields(result, evaluated)
    fileio.atomic_write_json(done_path, result)
    return result


def run_group(group: str, scale: str, codes_dir: str, out: str, steps=None, seeds: int = 3, log=print) -> dict:
    """{run id: row.json} of one `--rows` entry (a row, a seed group or a variant)."""
    if group in SEED_RUNS:
        row = SEED_RUNS[group]
        experiment = configs.table2_row(row, scale, steps=steps)
        first = 1 if group == "2.4-seeds" else 0  # row 2.4 itself is the AMAE's seed 0
        return {f"{row}-{'nopbt-' if group == '2.2-nopbt' else ''}s{s}":
                run_trained(f"{group} seed {s}", experiment, codes_dir, out, seed=s, log=log)
                for s in range(first, seeds)}
    experiment = configs.table2_row(group, scale, steps=steps)
    if group in PBT_ROWS:
        return {group: run_pbt(group, experiment, codes_dir, out, scale, log=log)}
    return {group: run_trained(group, experiment, codes_dir, out, log=log)}


# --- stage 4: reconstructions through both levels -------------------------------------------------------

def reconstructions(second_run_dir: str, first, codes_dir: str, out_dir: str, n_codes: int,
                    n_excerpts: int = 1) -> list:
    """Held-out first-level code excerpts (`n_codes` each, from the code corpus's eval split)
    reconstructed by the second level (Polyak weights) and rendered by the first level: writes
    excerptN_first_level.wav (the first level's own rendering of the original codes) and
    excerptN_second_level.wav; returns [{paths, "first_level_code_accuracy"}]."""
    from tf_ada.audio import save_wav
    from tf_ada.encode import render_through_levels
    from tf_ada.train import load_model
    second, _ = load_model(second_run_dir)
    ds = data.eval_dataset(codes_dir, n_samples=n_codes, batch_size=1, split=data.Manifest.read(codes_dir).eval_split)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for i, (x, mask) in enumerate(ds.take(n_excerpts)):
        r = render_through_levels(second, first, x[0].numpy(), seed=i)
        paths = {"first_level": os.path.join(out_dir, f"excerpt{i}_first_level.wav"),
                 "second_level": os.path.join(out_dir, f"excerpt{i}_second_level.wav")}
        save_wav(paths["first_level"], ops.mu_law_decode(r["reference_audio"]).numpy())
        save_wav(paths["second_level"], ops.mu_law_decode(r["audio"]).numpy())
        written.append(dict(paths, first_level_code_accuracy=r["accuracy"],
                            second_level_codes_in_use=int(len(np.unique(r["second_codes"])))))
    return written


def add_reconstructions(result: dict, first, codes_dir: str, scale: str, n_codes: int) -> dict:
    """Stage 4 for one finished ADA run (skipped when done or diverged); rewrites its row.json."""
    if result.get("diverged") or result.get("reconstructions") or not result.get("run_dir"):
        return result
    if "local" not in json.load(open(os.path.join(result["run_dir"], "experiment.json")))["model"]:
        return result  # row 2.1: a WaveNet, nothing to reconstruct
    out_dir = os.path.join(result["run_dir"], "reconstructions")
    result["reconstructions"] = reconstructions(result["run_dir"], first, codes_dir, out_dir, n_codes)
    result["first_level_code_accuracy"] = float(np.mean([r["first_level_code_accuracy"]
                                                         for r in result["reconstructions"]]))
    path = os.path.join(result.get("population_dir") or result["run_dir"], "row.json")
    fileio.atomic_write_json(path, result)
    return result


# --- stage 5: convergence, claims, report ---------------------------------------------------------------

def convergence(results: dict, sequences: dict) -> dict:
    """{run id: (CONVERGED | NOT_CONVERGED | UNDECIDED, reasons)} by `CONVERGENCE`."""
    out = {}
    for run, r in results.items():
        if r.get("diverged"):
            out[run] = (NOT_CONVERGED, ["non-finite training loss" + (" in every member" if r.get("pbt") else "")])
            continue
        if run not in sequences:
            out[run] = (UNDECIDED, ["not evaluated"])
            continue
        peers = [p for p, q in results.items() if q.get("decoder_rf") == r.get("decoder_rf") and p in sequences
                 and not q.get("diverged") and q.get("eval_nll_paper") is not None]
        best = min(peers, key=lambda p: results[p]["eval_nll_paper"])
        verdicts, reasons = [], []
        ppl = report.condition_estimate(sequences, {run: 1}, "perplexity", -PERPLEXITY_FLOOR, "full")
        if ppl is not None:  # (2); row 2.1 has no codes and is judged on (1) and (3)
            verdicts.append(ev.verdict(ppl.value, ppl.se, 1))
            reasons.append(f"perplexity - {PERPLEXITY_FLOOR:.0f} = {report.fmt(ppl.value, ppl.se, 1)}: {verdicts[-1]}")
        nll = report.condition_estimate(sequences, {run: 1, best: -NLL_TOLERANCE}, "nll", 0.0, "paper") \
            if best != run else report.condition_estimate(sequences, {run: 1 - NLL_TOLERANCE}, "nll", 0.0, "paper")
        if nll is not None:
            verdicts.append(ev.verdict(nll.value, nll.se, -1))
            reasons.append(f"NLL - {NLL_TOLERANCE} x best at RF {r.get('decoder_rf')} ({best}) = "
                           f"{report.fmt(nll.value, nll.se, 4)}: {verdicts[-1]}")
        combined = ev.combine(verdicts)
        out[run] = ({ev.HOLDS: CONVERGED, ev.DOES_NOT_HOLD: NOT_CONVERGED}.get(combined, UNDECIDED), reasons)
    return out


def convergence_claims(status: dict, seeds: int) -> list:
    """(text, verdict, detail) of the convergence claims of sec. 4.3, from per-run `convergence`."""
    def runs(prefix):
        return {k: v[0] for k, v in status.items() if k.startswith(prefix)}
    vq = runs("2.2-nopbt-s")
    amae = {k: v for k, v in {**runs("2.4-s"), "2.4": status.get("2.4", (None,))[0]}.items() if v is not None}
    rf128 = status.get("2.2-rf128", (None,))[0]

    def any_fails(states):
        if not states:
            return report.NOT_RUN
        if NOT_CONVERGED in states.values():
            return ev.HOLDS
        return ev.DOES_NOT_HOLD if all(s == CONVERGED for s in states.values()) else ev.INCONCLUSIVE

    def all_converge(states):
        v = any_fails(states)
        return {ev.HOLDS: ev.DOES_NOT_HOLD, ev.DOES_NOT_HOLD: ev.HOLDS}.get(v, v)

    def detail(states):
        return ", ".join(f"{k}: {v}" for k, v in sorted(states.items()))

    return [
        (f"VQ-VAE (RF 64) does not converge reliably without PBT (at least one of {seeds} seeds does not converge)",
         any_fails(vq), detail(vq)),
        (f"AMAE (RF 64) converges without PBT (all {seeds} seeds converge)", all_converge(amae), detail(amae)),
        ("VQ-VAE with decoder RF above 64 does not converge even with PBT (2.2-rf128)",
         any_fails({"2.2-rf128": rf128} if rf128 else {}), f"2.2-rf128: {rf128}" if rf128 else ""),
    ]


def describe(run: str) -> str:
    """The model of a run that is not a row of the paper's table."""
    if run.startswith("2.2-nopbt"):
        return "VQ-VAE without PBT"
    if run in configs.TABLE2_VARIANTS:
        return configs.TABLE2_VARIANTS[run].description
    spec = configs.TABLE2_ROWS.get(run.split("-")[0])
    return spec.description if spec else run


COLUMNS = [  # (row.json key, header, digits), as reproduce/table1.py
    ("train_nll_paper", "train NLL (1 s)", 3), ("eval_nll_paper", "eval NLL (1 s)", 3),
    ("eval_nll_full", "eval NLL (full context)", 3), ("eval_perplexity_paper", "perplexity (1 s)", 1),
    ("eval_perplexity_full", "perplexity (full context)", 1)]


def shown_path(path: str, out: str) -> str:
    """`path` as the report shows it: relative to the report's folder `out` when it lies inside it
    (also when it was recorded through a link or from a copy of the tree: the part after the
    folder's name), else as recorded."""
    if not path:
        return "-"
    root = os.path.realpath(out)
    real = os.path.realpath(path)
    if real.startswith(root + os.sep):
        return os.path.relpath(real, root)
    marker = os.sep + os.path.basename(root) + os.sep
    return path.split(marker, 1)[1] if marker in path else path


def query_norms_used(results: dict) -> dict:
    """{query_norm: [run ids]} of the VQ-VAE runs, as their experiment.json records it."""
    used = {}
    for run, r in sorted(results.items()):
        path = os.path.join(r.get("run_dir") or "", "experiment.json")
        if r.get("run_dir") and os.path.exists(path):
            with open(path) as f:
                model = json.load(f)["model"]
            if model.get("quantizer") == "vq":
                used.setdefault(model.get("query_norm", "none"), []).append(run)
    return used


def write_report(results: dict, scale: str, out: str, codes_dir: str, seeds: int, wall_minutes=None) -> str:
    """OUT/table2.csv and OUT/table2.md (see the module docstring)."""
    sequences = {run: report.load_sequences(r["run_dir"]) for run, r in results.items()
                 if r.get("run_dir") and not r.get("diverged")}
    sequences = {run: s for run, s in sequences.items() if s is not None}
    status = convergence(results, sequences)
    ordered = [run for run in paper.TABLE2] + sorted(run for run in results if run not in paper.TABLE2)
    lines_csv = []
    for run in ordered:
        r, p = results.get(run, {}), paper.TABLE2.get(run, {})
        line = {"run": run, "model": p.get("model") or describe(run), "paper_decoder_rf": p.get("decoder_rf"),
                "decoder_rf": r.get("decoder_rf")
                or configs.decoder_receptive_field(configs.table2_row(run, scale).model),
                "paper_train_nll": p.get("train_nll"), "paper_eval_nll": p.get("eval_nll"),
                "paper_perplexity": p.get("perplexity")}
        for key, _, _ in COLUMNS:
            line[key], line[key + "_se"] = r.get(key), r.get(key + "_se")
        line.update(pbt=r.get("pbt"), seed=r.get("seed"), diverged=r.get("diverged"),
                    converges=status.get(run, (None,))[0], first_level_code_accuracy=r.get("first_level_code_accuracy"),
                    steps=r.get("steps"), minutes=r.get("minutes"), eval_minutes=r.get("eval_minutes"))
        lines_csv.append(line)
    with open(os.path.join(out, "table2.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(lines_csv[0]))
        w.writeheader()
        w.writerows(lines_csv)
    manifest = data.Manifest.read(codes_dir)
    windows = sorted({(r.get("eval_sequences_paper"), r.get("eval_works")) for r in results.values()
                      if r.get("eval_sequences_paper")}, key=str)
    md = [f"# Table 2 at `{scale}` scale", "",
          f"Second-level models on the codes of `{manifest.source_experiment}` "
          f"({manifest.source_checkpoint}, step {manifest.source_step}), encoded with its Polyak "
          f"weights: `{codes_dir}` (hop {manifest.hop}, {manifest.sample_rate:g} codes/s, corpus hash "
          f"{manifest.corpus_hash[:12]}, the source audio's). NLL in nats per code step (Polyak-averaged "
          "weights); perplexity = exp(entropy of second-level code usage) (max 256); decoder RF in code steps. "
          "Values ± one standard error clustered by work; protocols as in Table 1 (1-s windows = 2,000 codes). "
          "Held-out windows and works per run: "
          + (", ".join(f"{n} windows / {w} works" for n, w in windows) or "-") + ".", "",
          "| # | model | paper decoder RF | our decoder RF | paper train NLL | paper eval NLL | paper perplexity | "
          + " | ".join(f"our {h}" for _, h, _ in COLUMNS)
          + " | converges | first-level code accuracy | steps | minutes (of which final eval) |",
          "|" + "---|" * (12 + len(COLUMNS))]
    for line in lines_csv:
        ours = " | ".join(report.fmt(line[k], line[k + "_se"], d) for k, _, d in COLUMNS)
        name = line["model"] + (f", seed {line['seed']}" if line["seed"] is not None else "")
        md.append(f"| {line['run']} | {name} | {report.fmt(line['paper_decoder_rf'])} | "
                  f"{report.fmt(line['decoder_rf'])} | "
                  f"{report.fmt(line['paper_train_nll'])} | {report.fmt(line['paper_eval_nll'])} | "
                  f"{report.fmt(line['paper_perplexity'], digits=1)} | {ours} | "
                  f"{'diverged' if line['diverged'] else line['converges'] or '-'} | "
                  f"{report.fmt(line['first_level_code_accuracy'])} | {report.fmt(line['steps'])} | "
                  f"{report.fmt(line['minutes'], digits=1)} ({report.fmt(line['eval_minutes'], digits=1)}) |")
    md += ["", "Rows without a paper number are runs the text's claims need: `2.2-nopbt-sN` the VQ-VAE of 2.2 "
           "trained without PBT from seed N, `2.4-sN` the AMAE of 2.4 from seed N (2.4 is seed 0), `2.2-rf128` a "
           "PBT VQ-VAE with decoder RF 128. Minutes: training and final evaluation over every invocation "
           "(the run's train.log times; a PBT run: the sum of its members' intervals, as on one worker, and "
           "the best member's final evaluation)."
           + (f" Wall time of this invocation: {wall_minutes:.1f} min." if wall_minutes is not None else ""),
           "", "## Convergence", "", CONVERGENCE, ""]
    for run in ordered:
        if run in status:
            md.append(f"- {run}: **{status[run][0]}** ({'; '.join(status[run][1]) or '-'})")
    md += ["", "## The paper's claims at this scale", "",
           "NLL and perplexity claims: paired differences on the same held-out windows, work-clustered SEs, "
           "**holds** beyond 2 SE in the claimed direction, **does not hold** beyond 2 SE the other way, "
           "**inconclusive** within. Convergence claims: counts of the runs' convergence above.", ""]
    for text, conditions in paper.TABLE2_CLAIMS:
        md.append(report.claim_line(text, sequences, conditions))
    for text, verdict, detail in convergence_claims(status, seeds):
        md.append(f"- {text}: **{verdict}**" + (f" [{detail}]" if detail else ""))
    recon = [(run, r) for run, r in results.items() if r.get("reconstructions")]
    if recon:
        md += ["", "## Reconstructions (second level -> first-level codes -> audio)", "",
               "Each held-out excerpt of first-level codes is encoded and decoded (sampled) by the second level, "
               "then rendered to audio by the first level's decoder; `first_level` is the first level's own "
               "rendering of the original codes. Accuracy: share of first-level codes reconstructed exactly "
               "(chance 1/256).", ""]
        for run, r in recon:
            for i, x in enumerate(r["reconstructions"]):
                md.append(f"- {run} excerpt {i}: accuracy {x['first_level_code_accuracy']:.3f}; "
                          f"`{shown_path(x['second_level'], out)}` (first level alone: "
                          f"`{shown_path(x['first_level'], out)}`)")
    pbt_runs = [(run, r) for run, r in results.items() if r.get("pbt")]
    if pbt_runs:
        md += ["", "## Population based training", ""]
        for run, r in pbt_runs:
            md.append(f"- {run}: {r.get('pbt_population')} members, {r.get('pbt_exploits')} exploits, "
                      f"{r.get('pbt_diverged_intervals')} diverged intervals; best member {r.get('best_member')} "
                      f"(beta {report.fmt(r.get('beta'))}, gamma {report.fmt(r.get('gamma'), digits=4)}); "
                      f"lineage `{shown_path(r.get('lineage_plot'), out)}`; {r.get('pbt_stopped')}")
    md += ["", "## Deviations from the paper", "",
           "- " + {"tiny": "tiny scale: toy models and a few steps; the numbers only show the pipeline runs.",
                   "cpu": "cpu scale: the first-level and second-level models at the cpu sizes of configs.py and "
                          "600 steps per run (PBT: 6 members, exploit/explore every 100 steps after 200).",
                   "paper": "paper scale: appendix A sizes; batch, excerpt length and learning rate as Table 1's "
                            "(not given)."}[scale],
           "- Decoder (local model) of a second-level ADA: one repeat of dilations 1 .. RF/2 with filter length 2, "
           "so its RF is exactly 32, 64, 128 or 256 code steps (the paper gives only the RF); encoder and "
           "modulator as the first level's (`configs.second_level_ada`).",
           "- PBT ranges and schedule are ours where the paper is silent (tf_ada/pbt.py): beta log-uniform on "
           "[0.1, 2], gamma in [0.8, 0.999] log-uniform in 1 - gamma; fitness on fixed windows of the training "
           "split. The VQ-VAE runs use the VQ remedies of their time (data-initialised codebook; query "
           "normalisation as their experiment.json records it: "
           + ("; ".join(f"{norm!r}: {', '.join(runs)}" for norm, runs in query_norms_used(results).items()) or "-")
           + f"; `configs.VQ_REMEDIES` now: {configs.VQ_REMEDIES['query_norm']!r}).",
           "- The second-level training excerpts and evaluation windows are in code steps (1 s = 2,000 codes)."]
    text = "\n".join(md) + "\n"
    fileio.atomic_write_text(os.path.join(out, "table2.md"), text)
    return text


def trainings(group: str, scale: str, seeds: int) -> int:
    """How many models a `--rows` entry trains: a PBT row its population, a seed group its seeds."""
    from tf_ada import pbt
    if group in PBT_ROWS:
        return pbt.pbt_schedule(scale).population
    if group in SEED_RUNS:
        return seeds - (1 if group == "2.4-seeds" else 0)
    return 1


def dry_run(groups: list, scale: str, steps, seeds: int, bench_dir: str) -> str:
    """Each run's parameters, receptive fields, FLOPs, memory and estimated time (`tf_ada.plan`),
    times the models it trains, and the total; trains nothing (the first level and the encoding of
    the corpus are not included)."""
    from tf_ada import plan
    blocks, total, missing = [], 0.0, []
    for group in groups:
        experiment = configs.table2_row(SEED_RUNS.get(group, group), scale, steps=steps)
        d = plan.describe(experiment, bench_dir=bench_dir)
        n = trainings(group, scale, seeds)
        blocks.append(f"[{group}: {n} model(s) of]\n" + plan.format_plan(d, experiment))
        if d["seconds"] is None:
            missing.append(group)
        else:
            total += n * d["seconds"]
    if missing:
        blocks.append(f"total time: unavailable (no benchmark rate for {', '.join(missing)}; tf-ada bench train)")
    else:
        blocks.append(f"total time (estimate): {total / 3600:.1f} h of training for "
                      f"{sum(trainings(g, scale, seeds) for g in groups)} models, evaluations, PBT fitness, the "
                      f"first level and the code corpus not included")
    return "\n\n".join(blocks)


def main(argv=None) -> int:
    from tf_ada.cli import HelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--scale", default="cpu", choices=configs.SCALES, help="model and training sizes (configs.py)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--first-level", metavar="RUN", help="the first-level ADA's run folder (row 1.2)")
    which.add_argument("--pretrained", metavar="NAME", help="a shipped first-level model (default: 1.2-SCALE if "
                       "shipped, else row 1.2 trained into OUT/first_level)")
    parser.add_argument("--data", help="audio shard folder (default: the built-in corpus)")
    parser.add_argument("--codes", help="code shard folder (default OUT/codes; written if incomplete)")
    parser.add_argument("--out", help="output folder (default runs/table2-SCALE)")
    parser.add_argument("--steps", type=int, help="override the steps of every run (default: each row's)")
    parser.add_argument("--rows", default=",".join(RUN_GROUPS), help="comma-separated rows and run groups")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of 2.2-nopbt and 2.4-seeds (issue 15: at least 3)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print each run's parameters, receptive fields, FLOPs, memory and estimated time; "
                        "train nothing")
    parser.add_argument("--bench-dir", default=os.path.join("runs", "bench"),
                        help="benchmark JSON for --dry-run's time estimates (tf-ada bench train)")
    args = parser.parse_args(argv)
    groups = args.rows.split(",")
    unknown = [g for g in groups if g not in RUN_GROUPS]
    if unknown:
        parser.error(f"--rows: unknown {', '.join(unknown)}; choose from {','.join(RUN_GROUPS)}")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be a positive integer, got {args.steps}")
    if args.seeds < 1:
        parser.error(f"--seeds must be a positive integer, got {args.seeds}")
    if args.dry_run:
        print(dry_run(groups, args.scale, args.steps, args.seeds, args.bench_dir))
        return 0
    t0 = time.monotonic()
    out = args.out or os.path.join("runs", f"table2-{args.scale}")
    os.makedirs(out, exist_ok=True)
    from reproduce.table1 import default_data
    data_dir = args.data or default_data(args.scale)
    first, source = first_level(args.scale, data_dir, out, args.first_level, args.pretrained)
    codes_dir = code_corpus(first, source, data_dir, args.codes or os.path.join(out, "codes"))
    n_codes = 256 if args.scale == "tiny" else 4000  # reconstructed excerpt: 2 s of audio at cpu/paper scale
    results = {}
    for group in groups:
        for run, r in run_group(group, args.scale, codes_dir, out, args.steps, args.seeds).items():
            if run in paper.TABLE2 or run == "2.2-rf128":
                r = add_reconstructions(r, first, codes_dir, args.scale, n_codes)
            results[run] = r
        write_report(results, args.scale, out, codes_dir, args.seeds)
    wall = (time.monotonic() - t0) / 60
    md = write_report(results, args.scale, out, codes_dir, args.seeds, wall_minutes=wall)
    print(md)
    print(f"table2: wrote {os.path.join(out, 'table2.md')} and table2.csv in {wall:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())

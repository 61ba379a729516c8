"""Table 1 (sec. 4.1): ADAs trained on audio, our rows beside the paper's, with a verdict per claim.

    python -m reproduce.table1 --scale tiny|cpu|paper [--data DIR] [--out DIR] [--steps N] [--rows 1.1,1.2]
    python -m reproduce.table1 --scale paper --dry-run     # costs of every row, nothing trained

Trains (or resumes) each row with `tf_ada.train.Trainer`, evaluates it with Polyak-averaged
weights under both protocols of `tf_ada.evaluation` (the paper's 1-s sequences, and full
context), writes reconstructions of held-out excerpts, and writes OUT/table1.csv and
OUT/table1.md: every NLL and perplexity with its standard error (clustered by work), and each
claim judged by `tf_ada.evaluation.verdict` on paired, work-clustered differences between rows
on the same held-out windows (reproduce/report.py). Finished rows are skipped (their eval.json
and eval_sequences.npz are reused; a row evaluated before both protocols existed is
re-evaluated). Default data: the built-in corpus (built if missing).

Deviations at reduced scales are listed in the report: fewer, narrower layers (configs.py),
far fewer steps, a rendered corpus of a few hours instead of 413 h of recordings.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from typing import Optional

from reproduce import paper, report
from tf_ada import configs, data, fileio, ops
from tf_ada.audio import save_wav


def default_data(scale: str, log=print, hours: Optional[float] = None) -> str:
    """The built-in corpus for this scale (tiny: the one-minute build), built if missing: the pinned
    default corpus unless `hours` is given (tf_ada/corpus/build.py)."""
    from tf_ada.corpus import build
    out = os.path.join("runs", "corpus-tiny" if scale == "tiny" else "corpus")
    if not os.path.exists(os.path.join(out, "data", data.MANIFEST)):
        build.build(out, hours=hours, tiny=scale == "tiny", log=log)
    return os.path.join(out, "data")


def reconstructions(trainer, data_dir: str, out_dir: str, n_excerpts: int, n_samples: int) -> list[dict]:
    """Encodes and decodes the first held-out excerpts; writes original and reconstruction wavs."""
    from tf_ada.models.ada import ADA
    model = trainer.model
    if not isinstance(model, ADA):
        return []
    ds = data.eval_dataset(data_dir, n_samples=n_samples, batch_size=1, split=data.Manifest.read(data_dir).eval_split)
    written = []
    with trainer.polyak_weights():
        for i, (x, mask) in enumerate(ds.take(n_excerpts)):
            codes = model.encode(x)
            y = model.decode(codes, seed=i, verbose=False)
            orig = os.path.join(out_dir, f"excerpt{i}_original.wav")
            recon = os.path.join(out_dir, f"excerpt{i}_reconstruction.wav")
            save_wav(orig, ops.mu_law_decode(x[0]).numpy())
            save_wav(recon, ops.mu_law_decode(y[0]).numpy())
            trainer.write_audio(f"reconstruction/{i}", ops.mu_law_decode(y[0]).numpy())
            written.append({"original": orig, "reconstruction": recon})
    return written


def run_row(row: str, scale: str, data_dir: str, out: str, steps, log=print, strategy=None,
            eval_batches=None, polyak_decay=None, eval_sequences=None) -> dict:
    """Trains and evaluates one row (or reuses it); returns its row.json.

    eval_sequences: held-out windows of the final evaluation ("all" for the whole split; default:
    the Trainer's budget, `Trainer.eval_budget(final=True)`)."""
    import dataclasses
    from tf_ada import evaluation
    from tf_ada.train import Trainer
    exp = configs.table1_row(row, scale, steps=steps)
    overrides = {k: v for k, v in (("eval_batches", eval_batches), ("polyak_decay", polyak_decay)) if v is not None}
    if overrides:
        exp = dataclasses.replace(exp, train=dataclasses.replace(exp.train, **overrides))
    row_dir = os.path.join(out, exp.name)
    done_path = os.path.join(row_dir, "row.json")
    wanted = None if eval_sequences in (None, "all") else int(eval_sequences)
    if os.path.exists(done_path):
        with open(done_path) as f:
            result = json.load(f)
        if (result.get("steps") == exp.train.steps and "eval_nll_full" in result
                and os.path.exists(os.path.join(row_dir, evaluation.SEQUENCES_FILE))
                and (eval_sequences is None or result.get("eval_max_sequences") == wanted)):
            log(f"table1: row {row} already done ({done_path})")
            return result
    trainer = Trainer(exp, data_dir, row_dir, strategy=strategy, log=log)
    t0 = time.monotonic()
    ev = trainer.train()  # ends with an evaluation (or returns the finished run's eval.json)
    if eval_sequences is not None:
        ev = trainer.evaluate(budget={"train": trainer.eval_budget()["train"], "eval": wanted})
    elif "eval_nll_full" not in ev or ev.get("step") != trainer.current_step:
        ev = trainer.evaluate(final=True)
    eval_minutes = ev.get("eval_seconds", 0.0) / 60  # the evaluation the reported numbers come from
    # two seconds to listen to (the training excerpt length at tiny scale), a multiple of every hop
    recon_samples = exp.train.n_samples if scale == "tiny" else 32768
    recons = reconstructions(trainer, data_dir, os.path.join(row_dir, "reconstructions"),
                             n_excerpts=2 if scale != "tiny" else 1, n_samples=recon_samples)
    minutes, minutes_source = report.training_minutes(row_dir, (time.monotonic() - t0) / 60)
    result = {"row": row, "name": exp.name, "run_dir": os.path.abspath(row_dir), "steps": exp.train.steps,
              "minutes": minutes, "minutes_source": minutes_source, "eval_minutes": eval_minutes,
              "reconstructions": recons, "checkpoint": trainer.manager.latest_checkpoint,
              # the paper protocol's values under the names the demo and older reports read
              "train_nll": ev["train_nll"], "eval_nll": ev["eval_nll"], "perplexity": ev.get("eval_perplexity"),
              "codes_in_use": ev.get("eval_codes_in_use")}
    result.update({k: v for k, v in ev.items() if k.startswith(("train_", "eval_")) or k == "corpus_hash"})
    fileio.atomic_write_json(done_path, result)
    return result


COLUMNS = [  # (row.json key, header, digits): value and its SE (key + "_se")
    ("train_nll_paper", "train NLL (1 s)", 3), ("eval_nll_paper", "eval NLL (1 s)", 3),
    ("eval_nll_full", "eval NLL (full context)", 3), ("eval_perplexity_paper", "perplexity (1 s)", 1),
    ("eval_perplexity_full", "perplexity (full context)", 1)]


def table_rows(results: dict) -> list:
    """One dict per paper row (the paper's numbers, ours with SEs, steps, minutes): table1.csv's lines."""
    rows = []
    for row, p in paper.TABLE1.items():
        r = results.get(row, {})
        line = {"row": row, "model": p["model"], "input": p["input"], "hop": p["hop"] or "-",
                "paper_train_nll": p["train_nll"], "paper_eval_nll": p["eval_nll"], "paper_perplexity": p["perplexity"]}
        for key, _, _ in COLUMNS:
            line[key], line[key + "_se"] = r.get(key), r.get(key + "_se")
        line.update(eval_sequences=r.get("eval_sequences_paper"), eval_works=r.get("eval_works"),
                    steps=r.get("steps"), minutes=r.get("minutes"), eval_minutes=r.get("eval_minutes"))
        rows.append(line)
    return rows


def row_sequences(results: dict) -> dict:
    """{row: per-window results} of the rows whose run folder has eval_sequences.npz."""
    sequences = {row: report.load_sequences(r["run_dir"]) for row, r in results.items() if r.get("run_dir")}
    return {row: s for row, s in sequences.items() if s is not None}


def write_report(results: dict, scale: str, out: str, data_dir: str, title: str = None) -> str:
    """OUT/table1.csv and OUT/table1.md: the paper's rows beside ours (value ± SE, clustered by
    work), and each claim's verdict under both protocols (paired differences, reproduce/report.py);
    and OUT/table1.html (`write_html`)."""
    rows = table_rows(results)
    with open(os.path.join(out, "table1.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    sequences = row_sequences(results)
    hashes = sorted({r.get("corpus_hash") for r in results.values() if r.get("corpus_hash")})
    windows = sorted({(r.get("eval_sequences_paper"), r.get("eval_works")) for r in results.values()
                      if r.get("eval_sequences_paper")}, key=str)
    lines = [title or f"# Table 1 at `{scale}` scale", "",
             f"Data: `{data_dir}` (corpus hash {', '.join(h[:12] for h in hashes) or '-'}). NLL in nats per timestep "
             "(Polyak-averaged weights); perplexity = exp(entropy of code usage) (max 256). Two protocols: "
             "**1 s**, the paper's (Table 1 caption): held-out 1-s sequences evaluated on their own, perplexity "
             "within each sequence averaged over sequences; **full context**: the same windows with their whole "
             "left and right context from the recording, perplexity pooled over all codes. "
             "Values are ± one standard error clustered by work. Held-out windows (1 s) and works per row: "
             + (", ".join(f"{n} windows / {w} works" for n, w in windows) or "-") + ". Minutes: the run's "
             "wall time over all its training sessions, from its train.log and TensorBoard event times (gaps "
             "over 30 min, i.e. pauses, left out), on the machine's shared cores.", "",
             "| # | model | input | hop | paper train NLL | paper eval NLL | paper perplexity | "
             + " | ".join(f"our {h}" for _, h, _ in COLUMNS) + " | steps | minutes (of which final eval) |",
             "|" + "---|" * (9 + len(COLUMNS))]
    for r in rows:
        ours = " | ".join(report.fmt(r[k], r[k + "_se"], d) for k, _, d in COLUMNS)
        lines.append(f"| {r['row']} | {r['model']} | {r['input']} | {r['hop']} | {report.fmt(r['paper_train_nll'])} | "
                     f"{report.fmt(r['paper_eval_nll'])} | {report.fmt(r['paper_perplexity'], digits=1)} | {ours} | "
                     f"{report.fmt(r['steps'])} | {report.fmt(r['minutes'], digits=1)} "
                     f"({report.fmt(r['eval_minutes'], digits=1)}) |")
    lines += ["", "## The paper's claims at this scale", "",
              "Each claim is a difference between rows on the same held-out windows (paired), with its standard "
              "error clustered by work. **holds**: beyond 2 SE in the claimed direction; **does not hold**: beyond "
              "2 SE the other way; **inconclusive**: within 2 SE. Differences shown as value ± SE.", ""]
    for text, conditions in paper.TABLE1_CLAIMS:
        lines.append(report.claim_line(text, sequences, conditions))
    for text, conditions in paper.TABLE1_PROTOCOL_CLAIMS:
        lines.append(report.claim_line(text, sequences, conditions, protocols=["paper"]).replace("1-s sequences: ", ""))
    lines += ["", "## Deviations from the paper", ""] + [f"- {d}" for d in deviations(scale, data_dir)]
    md = "\n".join(lines) + "\n"
    fileio.atomic_write_text(os.path.join(out, "table1.md"), md)
    write_html(results, scale, out, data_dir, title)
    return md


def deviations(scale: str, data_dir: str) -> list:
    """The deviations from the paper at this scale, one sentence (markdown) each."""
    return [
        "Data: " + ("the built-in rendered piano corpus (a few hours; CORPUS.md), not 413 h of recordings."
                    if "corpus" in data_dir else f"`{data_dir}`."),
        {"tiny": "tiny scale: toy models and 2 steps; the numbers only show the pipeline runs.",
         "cpu": "cpu scale: same dilation patterns, filter lengths and gating as appendix A, with fewer "
                "repeats and 32-64 channels, and a few hundred steps instead of 500,000 (configs.py).",
         "paper": "paper scale: appendix A sizes; batch, excerpt length and learning rate are our choices "
                  "(the paper's are not given)."}[scale],
        "Values the paper does not give (ours): beta = 0.25, gamma = 0.9 (VQ_REMEDIES; 0.99 as written), nu = 0.1 with "
        "L_div = K ||mean q - 1/K||^2, query size D = 64, skip size = residual size.",
        "Receptive fields are the exact values of the stated architectures (e.g. 1021, 510 each side), "
        "which the paper rounds (1024, 512).",
        "VQ-VAE rows (1.2, 1.3, 1.7) use our remedies for the early codebook collapse "
        f"(`configs.VQ_REMEDIES`: query_norm = {configs.VQ_REMEDIES['query_norm']!r} (queries whitened, "
        "with each batch's covariance shrunk towards its diagonal by D / (n + D), or standardised, before "
        "the nearest-code search), codebook drawn from the first "
        f"batch's queries, K-means decay gamma = {configs.VQ_REMEDIES['gamma']}; docs/codebook_cpu.md); "
        "each row's experiment.json records what it used; the AMAE rows and 1.1 "
        "do not have a codebook. "
        "Dead-code restarts are off.",
        "Every row trains with a linear learning-rate warm-up (100 steps at cpu scale, 5,000 at "
        "paper scale); the paper states none.",
        "Evaluation budget: at most the stated number of 1-s held-out windows per row, chosen "
        "deterministically and spread over works (tf_ada/evaluation.py), the same windows for every row."]


def row_label(row: str) -> str:
    p = paper.TABLE1[row]
    return f"#{row} {p['model']} ({p['input']}" + (f", hop {p['hop']})" if p["hop"] else ")")


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return os.path.commonpath([path, folder]) == folder


def write_html(results: dict, scale: str, out: str, data_dir: str, title: str = None,
               figure2_png: str = None) -> str:
    """OUT/table1.html (reproduce/pages.py): `html_parts` and provenance."""
    from reproduce import pages
    parts, prov = html_parts(results, scale, out, data_dir, figure2_png=figure2_png)
    title = (title or f"Table 1 at {scale} scale").lstrip("# ").replace("`", "")
    return pages.write_page(os.path.join(out, "table1.html"), title, parts, prov)


def html_parts(results: dict, scale: str, out: str, data_dir: str, figure2_png: str = None,
               reconstructions: bool = True) -> tuple:
    """(fragments, provenance) of a Table 1 page in folder `out`: the table beside the paper's,
    the claims' verdicts, Figure 2 when its PNG exists (default: runs/figure2-SCALE beside OUT),
    and per row its reconstructions (players, spectrograms, the row's NLL and perplexity; unless
    `reconstructions` is False), training curves and code-usage histogram. Run folders inside OUT
    get TensorBoard's hparams session if they lack one (tf_ada.hparams), so that
    `tensorboard --logdir OUT` compares the rows."""
    from reproduce import pages
    from tf_ada import hparams
    e = pages.esc
    rows, sequences = table_rows(results), row_sequences(results)
    hashes = sorted({r.get("corpus_hash") for r in results.values() if r.get("corpus_hash")})
    header = ["#", "model", "input", "hop", "paper train NLL", "paper eval NLL", "paper perplexity"] \
        + [f"our {h}" for _, h, _ in COLUMNS] + ["steps", "minutes (final eval)"]
    body = [[r["row"], r["model"], r["input"], r["hop"], report.fmt(r["paper_train_nll"]),
             report.fmt(r["paper_eval_nll"]), report.fmt(r["paper_perplexity"], digits=1)]
            + [report.fmt(r[k], r[k + "_se"], d) for k, _, d in COLUMNS]
            + [r["steps"], f"{report.fmt(r['minutes'], digits=1)} ({report.fmt(r['eval_minutes'], digits=1)})"]
            for r in rows]
    parts = [pages.Raw(f"<p>Data: <code>{e(data_dir)}</code>. NLL in nats per timestep (Polyak-averaged weights), "
                       "perplexity = exp(entropy of code usage) (at most 256), each ± one standard error clustered by "
                       "work. <b>1 s</b>: the paper's protocol (held-out 1-s sequences on their own, perplexity per "
                       "sequence averaged); <b>full context</b>: the same windows with their whole recording as "
                       "context, perplexity pooled. Rows not run show -.</p>"),
             pages.table(header, body, caption="Table 1: ours beside the paper's"),
             pages.heading("The paper's claims at this scale"),
             pages.paragraph("Each claim is a difference between rows on the same held-out windows (paired), with "
                             "its standard error clustered by work. holds: beyond 2 SE in the claimed direction; does "
                             "not hold: beyond 2 SE the other way; inconclusive: within 2 SE."),
             report.claims_table(paper.TABLE1_CLAIMS, sequences),
             report.claims_table(paper.TABLE1_PROTOCOL_CLAIMS, sequences, protocols=["paper"])]
    figure2_png = figure2_png or os.path.join(os.path.dirname(os.path.abspath(out)), f"figure2-{scale}", "figure2.png")
    if os.path.exists(figure2_png):
        parts += [pages.heading("Figure 2 (predictability profiles, same scale)"),
                  pages.image(figure2_png, out, "Figure 2", 900)]
    parts.append(pages.heading("Rows: " + ("reconstructions, " if reconstructions else "")
                               + "training curves, code usage"))
    steps = {}
    for row, r in results.items():
        if not r.get("run_dir"):
            continue
        steps[f"#{row}"] = r.get("steps")
        if _inside(r["run_dir"], out):
            hparams.ensure(r["run_dir"])
        parts.append(pages.heading(row_label(row), 3))
        recon_rows = []
        for i, pair in enumerate(r.get("reconstructions", []) if reconstructions else []):
            if not (os.path.exists(pair["original"]) and os.path.exists(pair["reconstruction"])):
                continue
            recon_rows.append([i, pages.audio_cell(pair["original"], out),
                               pages.audio_cell(pair["reconstruction"], out),
                               report.fmt(r.get("eval_nll_paper"), r.get("eval_nll_paper_se")),
                               report.fmt(r.get("eval_perplexity_paper"), r.get("eval_perplexity_paper_se"), 1),
                               r.get("eval_codes_in_use_full", r.get("codes_in_use"))])
        if recon_rows:
            parts.append(pages.table(["excerpt", "original", "reconstruction (encode, then sample the local model)",
                                      "row's held-out NLL (1 s)", "row's perplexity (1 s)", "codes in use"],
                                     recon_rows))
        parts.append(pages.run_figures(r["run_dir"], out, row_label(row)))
    parts += [pages.heading("Deviations from the paper"),
              pages.Raw("<ul>" + "".join(f"<li>{e(d.replace('`', ''))}</li>" for d in deviations(scale, data_dir))
                        + "</ul>")]
    return parts, pages.provenance(steps=steps, data_dir=data_dir, corpus_hash=hashes or None)


def report_only(rows: list, scale: str, out: str, source: str, data_dir: str = None) -> int:
    """Rewrites the reports in `out` from the finished rows in `source` (SOURCE/NAME/row.json);
    trains and evaluates nothing. Rows without row.json are shown as not run. Each row's run folder
    (its training time, evaluation windows and figures) is the one row.json records, or SOURCE/NAME
    when that one no longer exists (`report.row_run_dir`)."""
    results = {}
    for row in rows:
        found_at = os.path.join(source, configs.table1_row(row, scale).name)
        path = os.path.join(found_at, "row.json")
        if os.path.exists(path):
            with open(path) as f:
                results[row] = json.load(f)
            run_dir = results[row]["run_dir"] = report.row_run_dir(results[row], found_at)
            # the whole run's training time (a row.json of older code holds its last stretch only)
            results[row]["minutes"], results[row]["minutes_source"] = report.training_minutes(
                run_dir, results[row].get("minutes"))
    if not results:
        print(f"table1: no finished rows (row.json) in {source}", file=sys.stderr)
        return 1
    data_dir = data_dir or os.path.join("runs", "corpus-tiny" if scale == "tiny" else "corpus", "data")
    write_report(results, scale, out, data_dir)
    print(f"table1: wrote {os.path.join(out, 'table1.html')}, table1.md and table1.csv from {len(results)} rows")
    return 0


def dry_run(rows: list, scale: str, steps, bench_dir: str) -> str:
    """Each row's parameters, receptive fields, FLOPs, memory and estimated time (`tf_ada.plan`),
    and the estimated total; trains nothing."""
    from tf_ada import plan
    blocks, total, missing = [], 0.0, []
    for row in rows:
        experiment = configs.table1_row(row, scale, steps=steps)
        d = plan.describe(experiment, bench_dir=bench_dir)
        blocks.append(plan.format_plan(d, experiment))
        if d["seconds"] is None:
            missing.append(row)
        else:
            total += d["seconds"]
    if missing:
        blocks.append(f"total time: unavailable (no benchmark rate for rows {', '.join(missing)})")
    else:
        blocks.append(f"total time (estimate): {total / 3600:.1f} h of training for {len(rows)} rows, "
                      "evaluations and reconstructions not included")
    return "\n\n".join(blocks)


def main(argv=None) -> int:
    from tf_ada.cli import HelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--scale", default="cpu", choices=configs.SCALES, help="model and training sizes (configs.py)")
    parser.add_argument("--data", help="shard folder (default: the built-in corpus)")
    parser.add_argument("--out", help="output folder (default runs/table1-SCALE)")
    parser.add_argument("--steps", type=int, help="override the steps of every row (default: each row's)")
    parser.add_argument("--rows", default=",".join(paper.TABLE1), help="comma-separated rows")
    parser.add_argument("--eval-batches", type=int,
                        help="periodic evaluation: eval_batches x batch_size 1-s windows per split "
                        "(default: the row's)")
    parser.add_argument("--eval-sequences", help="held-out 1-s windows of the final evaluation, or 'all' "
                        "(default: the periodic budget at tiny/cpu scale, the whole split at paper scale)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print each row's parameters, receptive fields, FLOPs, memory and estimated time; "
                        "train nothing")
    parser.add_argument("--bench-dir", default=os.path.join("runs", "bench"),
                        help="benchmark JSON for --dry-run's time estimates (tf-ada bench train)")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: rewrite table1.md, table1.csv and table1.html in --out from the finished "
                        "rows (row.json) found in --from")
    parser.add_argument("--from", dest="source",
                        help="with --report-only: folder of the finished rows (default: --out)")
    args = parser.parse_args(argv)
    unknown = [row for row in args.rows.split(",") if row not in configs.TABLE1_ROWS]
    if unknown:
        parser.error(f"--rows: unknown row(s) {', '.join(unknown)}; choose from {','.join(configs.TABLE1_ROWS)}")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be a positive integer, got {args.steps}")
    if args.dry_run:
        print(dry_run(args.rows.split(","), args.scale, args.steps, args.bench_dir))
        return 0
    out = args.out or os.path.join("runs", f"table1-{args.scale}")
    os.makedirs(out, exist_ok=True)
    if args.report_only:
        return report_only(args.rows.split(","), args.scale, out, args.source or out, args.data)
    data_dir = args.data or default_data(args.scale)
    results = {}
    for row in args.rows.split(","):
        results[row] = run_row(row, args.scale, data_dir, out, args.steps, eval_batches=args.eval_batches,
                               eval_sequences=args.eval_sequences)
        write_report(results, args.scale, out, data_dir)
    md = write_report(results, args.scale, out, data_dir)
    print(md)
    print(f"table1: wrote {os.path.join(out, 'table1.md')} and table1.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())

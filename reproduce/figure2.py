"""Figure 2 (sec. 4.2): predictability profiles of waveforms and of ADA #1.2's codes, with verdicts.

    python -m reproduce.figure2 --scale tiny|cpu|paper [--data DIR] [--out DIR] [--checkpoint ADA_RUN]

Codes come from the Table 1 row 1.2 checkpoint of the same scale (runs/table1-SCALE/...), trained
with reproduce/table1.py if missing. Writes profile_audio.csv, profile_codes.csv (with standard
errors clustered by work), their per-sequence sums (profile_*_units.npz), figure2.png and
figure2.md: every NLL with its SE, the check that training NLL is non-increasing in r (each r is
warm-started from the previous one and trained to the convergence test of
analysis/predictability.py), and the paper's claims judged by `tf_ada.evaluation.verdict`
(holds / does not hold / inconclusive, beyond two standard errors).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from analysis import predictability as pred
from analysis.plot_profiles import plot_figure2
from reproduce import report, table1
from tf_ada import evaluation as ev
from tf_ada import fileio

SETTINGS = {  # per scale: receptive fields and training budget of the profile models
    "tiny": dict(audio_rf=[0, 1, 2, 4], codes_rf=[0, 1, 2, 4], max_train=20_000, max_eval=5_000, hidden=16,
                 max_steps=200, patience=5),
    # patience 20 (2,000-step plateaus): with 5, a cold r = 8 stopped at 2.585 / 2.577 nats (train /
    # held out) where 20 reached 2.503 / 2.553 (docs/figure2_cpu.md, "Longer lags, checked")
    "cpu": dict(audio_rf=[0, 1, 2, 4, 8, 16, 32, 64, 128], codes_rf=[0, 1, 2, 4, 8, 16, 32, 64, 128],
                max_train=2_000_000, max_eval=1_000_000, hidden=64, max_steps=60000, patience=20),
    "paper": dict(audio_rf=[0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
                  codes_rf=[0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], max_train=20_000_000,
                  max_eval=1_000_000, hidden=256, max_steps=100000, patience=20),
}


def save_units(path: str, units: list, results: list, train_groups, eval_groups) -> None:
    """Per-sequence (NLL sum, count) of every r, and the works of the sequences, as .npz."""
    arrays = {"train_groups": np.asarray(train_groups, str), "eval_groups": np.asarray(eval_groups, str)}
    for res, u in zip(results, units):
        for split in ("train", "eval"):
            key = f"{res['receptive_field']}/{split}"
            arrays[f"{key}/sums"], arrays[f"{key}/counts"] = u[split]
    np.savez_compressed(path, **arrays)


def load_estimates(path: str, split: str = "eval") -> dict:
    """{r: NLL Estimate on `split`} (clustered by work) from `save_units`' file; {} if missing."""
    if not os.path.exists(path):
        return {}
    with np.load(path, allow_pickle=False) as z:
        groups = z[f"{split}_groups"]
        rs = sorted({int(k.split("/")[0]) for k in z.files if "/" in k})
        return {r: ev.ratio_estimate(z[f"{r}/{split}/sums"], z[f"{r}/{split}/counts"], groups) for r in rs}


def claims(a: dict, c: dict, marker) -> list:
    """[(text, verdict, detail)] for the paper's Figure 2 claims, from held-out NLL estimates
    {r: Estimate} of audio (`a`) and codes (`c`); rs compared within one profile are paired."""
    out = []
    rs = sorted(k for k in a if k > 0)
    if len(rs) >= 3 and 0 in a:
        # drop from r = 0 to the smallest r > 5 x the drop over the last two doublings
        e = (a[0] - a[rs[0]]) - (a[rs[-3]] - a[rs[-1]]) * 5.0
        out.append(("audio NLL drops quickly and flattens (the drop from r = 0 to the smallest r is over 5x the "
                    "drop over the last two doublings)", ev.verdict(e.value, e.se, 1), report.fmt(e.value, e.se, 4)))
    if c and 0 in c and 0 in a:
        common = [r for r in sorted(c) if r in a and r > 0]
        parts = [ev.independent_difference(ev.quotient(c[r], c[0]), ev.quotient(a[r], a[0])) for r in common]
        out.append(("codes are much less predictable than audio (codes NLL relative to their unigram entropy above "
                    "audio's at every common r > 0; different excerpts, so unpaired)",
                    ev.combine(ev.verdict(d, se, 1) for d, se in parts) if parts else report.NOT_RUN,
                    "; ".join(report.fmt(d, se, 3) for d, se in parts)))
        below = [r for r in c if 0 < r < marker]
        above = [r for r in c if r >= marker]
        if len(below) >= 2 and len(above) >= 2:
            # transition: the per-doubling drop beyond the encoder's RF is under half the drop before it
            slope_below = (c[min(below)] - c[max(below)]) * (1.0 / (len(below) - 1))
            slope_above = (c[min(above)] - c[max(above)]) * (1.0 / (len(above) - 1))
            e = slope_above - slope_below * 0.5
            out.append((f"a transition where r passes the encoder's receptive field ({marker:g} code steps): the "
                        "per-doubling NLL drop beyond it is under half the drop before it",
                        ev.verdict(e.value, e.se, -1), report.fmt(e.value, e.se, 4)))
        else:
            out.append((f"a transition at the encoder's receptive field ({marker:g} code steps)", report.NOT_RUN, ""))
    return out


def _run_profile(path_csv, path_units, train, ev_seqs, rfs, n_classes, s, train_groups, eval_groups):
    if os.path.exists(path_csv) and os.path.exists(path_units):
        return pred.read_csv(path_csv)
    results, units = pred.profile(train, ev_seqs, rfs, n_classes, hidden=s["hidden"], max_steps=s["max_steps"],
                                  patience=s["patience"],
                                  train_groups=train_groups, eval_groups=eval_groups, return_units=True)
    pred.write_csv(path_csv, results)
    save_units(path_units, units, results, train_groups, eval_groups)
    return results


def _check_lines(name: str, results: list) -> list:
    rises = [r for r in results if r.get("non_increasing") == "rises"]
    limit = [r["receptive_field"] for r in results if r.get("converged") is False]
    lines = [f"- {name}: training NLL non-increasing in r within 2 SE: "
             + ("**ok**" if not rises else "**rises** at " + ", ".join(
                 f"r = {r['receptive_field']} (+{report.fmt(r['train_nll_change'], r['train_nll_change_se'], 4)})"
                 for r in rises))]
    lines.append(f"- {name}: points that reached the step limit before the convergence test: "
                 + (", ".join(f"r = {r}" for r in limit) if limit else "none"))
    return lines


def main(argv=None) -> int:
    from tf_ada.cli import HelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--scale", default="cpu", choices=list(SETTINGS),
                        help="receptive fields and training budget of the profile models (SETTINGS)")
    parser.add_argument("--data", help="audio shard folder (default: the built-in corpus)")
    parser.add_argument("--out", help="output folder (default: runs/figure2-SCALE)")
    parser.add_argument("--checkpoint", help="ADA run folder (default: the Table 1 row 1.2 run of this scale)")
    parser.add_argument("--skip-codes", action="store_true", help="profile the audio only")
    args = parser.parse_args(argv)
    s = SETTINGS[args.scale]
    out = args.out or os.path.join("runs", f"figure2-{args.scale}")
    os.makedirs(out, exist_ok=True)
    data_dir = args.data or table1.default_data(args.scale)
    from tf_ada import data
    eval_split = data.Manifest.read(data_dir).eval_split
    t0 = time.monotonic()
    timings = {}
    train, train_works = pred.audio_sequences(data_dir, s["max_train"], "train", with_works=True)
    ev_seqs, eval_works = pred.audio_sequences(data_dir, s["max_eval"], eval_split, with_works=True)
    audio = _run_profile(os.path.join(out, "profile_audio.csv"), os.path.join(out, "profile_audio_units.npz"),
                         train, ev_seqs, s["audio_rf"], 256, s, train_works, eval_works)
    timings["audio"] = time.monotonic() - t0
    codes, marker = None, None
    if not args.skip_codes:
        checkpoint = args.checkpoint
        if checkpoint is None:
            row_out = os.path.join("runs", f"table1-{args.scale}")
            checkpoint = os.path.join(row_out, f"table1_1_2_{args.scale}")
            if not os.path.exists(os.path.join(checkpoint, "row.json")):
                table1.run_row("1.2", args.scale, data_dir, row_out, None)
        t1 = time.monotonic()
        hop = cfg_hop(checkpoint)
        train, n_codes, cfg, train_works = pred.code_sequences(data_dir, checkpoint, s["max_train"] // hop, "train",
                                                               with_works=True)
        ev_seqs, _, _, eval_works = pred.code_sequences(data_dir, checkpoint, s["max_eval"] // hop, eval_split,
                                                        with_works=True)
        marker = cfg.encoder_receptive_field_codes
        codes_csv, codes_units = os.path.join(out, "profile_codes.csv"), os.path.join(out, "profile_codes_units.npz")
        for stale in (codes_csv, codes_units):  # codes depend on the checkpoint: always recomputed
            if os.path.exists(stale):
                os.remove(stale)
        codes = _run_profile(codes_csv, codes_units, train, ev_seqs, s["codes_rf"], n_codes, s, train_works,
                             eval_works)
        timings["codes"] = time.monotonic() - t1
    png = plot_figure2(audio, codes, os.path.join(out, "figure2.png"), marker)
    lines = [f"# Figure 2 at `{args.scale}` scale", "",
             f"Data: `{data_dir}`. ![figure 2](figure2.png)", "",
             "NLL in nats per timestep, ± one standard error clustered by work. Each r > 0 is warm-started from "
             "the previous r and trained until the validation NLL stops improving (analysis/predictability.py).", "",
             "| r | audio train NLL | audio eval NLL | audio steps | codes train NLL | codes eval NLL | codes steps |",
             "|---|---|---|---|---|---|---|"]
    cmap = {r["receptive_field"]: r for r in (codes or [])}
    amap = {r["receptive_field"]: r for r in audio}
    for r in sorted(set(amap) | set(cmap)):
        a, c = amap.get(r, {}), cmap.get(r, {})
        cell = lambda d, k: report.fmt(d.get(k), d.get(k + "_se"), 4)
        lines.append(f"| {r} | {cell(a, 'train_nll')} | {cell(a, 'eval_nll')} | {report.fmt(a.get('steps'))} | "
                     f"{cell(c, 'train_nll')} | {cell(c, 'eval_nll')} | {report.fmt(c.get('steps'))} |")
    lines += ["", "## Convergence checks", ""] + _check_lines("audio", audio)
    if codes:
        lines += _check_lines("codes", codes)
    lines += ["", "## The paper's claims at this scale", "",
              "**holds**: beyond 2 SE in the claimed direction; **does not hold**: beyond 2 SE the other way; "
              "**inconclusive**: within 2 SE (tf_ada.evaluation.verdict). The quantity tested is shown as value ± SE.",
              ""]
    a_est = load_estimates(os.path.join(out, "profile_audio_units.npz"))
    c_est = load_estimates(os.path.join(out, "profile_codes_units.npz")) if codes else {}
    judged = claims(a_est, c_est, marker or 0)
    for text, verdict, detail in judged:
        lines.append(f"- **{verdict}**: {text}" + (f" [{detail}]" if detail else ""))
    lines += ["", f"Encoder receptive field in code steps: {marker}" if marker else "Codes profile not run.",
              "", "Run times: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in timings.items()), "",
              "Deviations: profile models are trained on a subset of the corpus "
              f"({s['max_train']:,} train / {s['max_eval']:,} held-out timesteps, excerpts from the starts of evenly "
              f"spaced recordings) with hidden size {s['hidden']}, patience {s['patience']} checks and at most "
              f"{s['max_steps']:,} steps per r; the "
              "paper does not give its sizes. At cpu scale the ADA is the reduced #1.2 (encoder receptive "
              "field 255 samples = 32 code steps, not 64)."]
    fileio.atomic_write_text(os.path.join(out, "figure2.md"), "\n".join(lines) + "\n")
    page = write_html(out, args.scale, data_dir, png, audio, codes, judged, marker, timings, s,
                      None if args.skip_codes else checkpoint)
    print("\n".join(lines))
    print(f"figure2: wrote {png}, {os.path.join(out, 'figure2.md')} and {page}")
    return 0


def write_html(out: str, scale: str, data_dir: str, png: str, audio: list, codes, judged: list, marker,
               timings: dict, s: dict, checkpoint=None) -> str:
    """OUT/figure2.html (reproduce/pages.py): the figure, the profiles as a table with SEs, the
    convergence checks, the claims' verdicts, the ADA's training curves and code usage, provenance."""
    from reproduce import pages
    amap = {r["receptive_field"]: r for r in audio}
    cmap = {r["receptive_field"]: r for r in (codes or [])}
    cell = lambda d, k: report.fmt(d.get(k), d.get(k + "_se"), 4)
    body = [[r, cell(amap.get(r, {}), "train_nll"), cell(amap.get(r, {}), "eval_nll"), amap.get(r, {}).get("steps"),
             cell(cmap.get(r, {}), "train_nll"), cell(cmap.get(r, {}), "eval_nll"), cmap.get(r, {}).get("steps")]
            for r in sorted(set(amap) | set(cmap))]
    checks = _check_lines("audio", audio) + (_check_lines("codes", codes) if codes else [])
    parts = [pages.Raw(f"<p>Data: <code>{pages.esc(data_dir)}</code>. Negative log-likelihood of the next sample "
                       "(audio) or code (codes of ADA #1.2) against the receptive field r of the predictor, in nats "
                       "per timestep, ± one standard error clustered by work. Each r &gt; 0 is warm-started from the "
                       "previous r and trained until the validation NLL stops improving "
                       "(analysis/predictability.py).</p>"),
             pages.image(png, out, "Figure 2: predictability profiles", 1000),
             pages.table(["r", "audio train NLL", "audio eval NLL", "audio steps", "codes train NLL", "codes eval NLL",
                          "codes steps"], body, caption="Profiles"),
             pages.heading("Convergence checks"),
             pages.Raw("<ul>" + "".join(f"<li>{pages.esc(c[2:].replace('**', ''))}</li>" for c in checks) + "</ul>"),
             pages.heading("The paper's claims at this scale"),
             pages.paragraph("holds: beyond 2 SE in the claimed direction; does not hold: beyond 2 SE the other way; "
                             "inconclusive: within 2 SE (tf_ada.evaluation.verdict)."),
             pages.table(["claim", "verdict", "quantity tested (value ± SE)"],
                         [[text, pages.verdict(v), detail or None] for text, v, detail in judged])]
    steps = {"profile models (max per r)": s["max_steps"]}
    if checkpoint and os.path.isdir(checkpoint):
        from tf_ada.configs import Experiment
        ada_steps = Experiment.load(checkpoint).train.steps
        steps["ADA"] = ada_steps
        parts += [pages.heading(f"The ADA whose codes are profiled ({os.path.basename(checkpoint.rstrip(os.sep))}, "
                                f"{ada_steps:,} steps)"),
                  pages.run_figures(checkpoint, out, "ADA #1.2")]
    parts += [pages.heading("Deviations and run times"),
              pages.paragraph(f"Profile models are trained on a subset of the corpus ({s['max_train']:,} train / "
                              f"{s['max_eval']:,} held-out timesteps) with hidden size {s['hidden']} and at most "
                              f"{s['max_steps']:,} steps per r; the paper does not give its sizes. Encoder receptive "
                              f"field in code steps: {marker if marker else 'codes profile not run'}. Run times: "
                              + ", ".join(f"{k} {v / 60:.1f} min" for k, v in timings.items()) + ".")]
    prov = pages.provenance(steps=steps, data_dir=data_dir, extra={"ADA checkpoint": checkpoint or "-"})
    return pages.write_page(os.path.join(out, "figure2.html"), f"Figure 2 at {scale} scale", parts, prov)


def cfg_hop(checkpoint: str) -> int:
    from tf_ada.configs import Experiment
    return Experiment.load(checkpoint).model.hop


if __name__ == "__main__":
    sys.exit(main())

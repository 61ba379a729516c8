"""Figure 2 (sec. 4.2): predictability profiles of waveforms and of ADA #1.2's codes, with verdicts.

    python reproduce/figure2.py --scale tiny|cpu|paper [--data DIR] [--out DIR] [--checkpoint ADA_RUN]

Codes come from the Table 1 row 1.2 checkpoint of the same scale (runs/table1-SCALE/...), trained
with reproduce/table1.py if missing. Writes profile_audio.csv, profile_codes.csv, figure2.png and
figure2.md (the paper's claims, each holds / does not hold at this scale).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from analysis import predictability as pred  # noqa: E402
from analysis.plot_profiles import plot_figure2  # noqa: E402
from reproduce import table1  # noqa: E402

SETTINGS = {  # per scale: receptive fields and training budget of the profile models
    "tiny": dict(audio_rf=[0, 1, 2, 4], codes_rf=[0, 1, 2, 4], max_train=20_000, max_eval=5_000, hidden=16,
                 max_steps=200),
    "cpu": dict(audio_rf=[0, 1, 2, 4, 8, 16, 32, 64, 128], codes_rf=[0, 1, 2, 4, 8, 16, 32, 64, 128],
                max_train=2_000_000, max_eval=200_000, hidden=64, max_steps=3000),
    "paper": dict(audio_rf=[0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
                  codes_rf=[0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], max_train=20_000_000,
                  max_eval=1_000_000, hidden=256, max_steps=20000),
}


def claims(audio, codes, marker):
    a = {r["receptive_field"]: r["eval_nll"] for r in audio}
    c = {r["receptive_field"]: r["eval_nll"] for r in codes} if codes else {}
    rs = sorted(k for k in a if k > 0)
    out = []
    if len(rs) >= 3:
        first_drop = a[0] - a[rs[0]]
        late_drop = a[rs[-3]] - a[rs[-1]]
        out.append(("audio NLL drops quickly and flattens (drop from r = 0 to the smallest r is over 5x the drop "
                    "over the last two doublings)", first_drop > 5 * max(late_drop, 0.0)))
    if c:
        common = [r for r in sorted(c) if r in a and r > 0]
        out.append(("codes are much less predictable than audio (codes NLL in bits per symbol above audio's at every "
                    "common r > 0, relative to each alphabet's unigram entropy)",
                    all(c[r] / c[0] > a[r] / a[0] for r in common) if common else None))
        below = [r for r in c if 0 < r < marker]
        above = [r for r in c if r >= marker]
        if below and above:
            # transition: the NLL keeps falling up to the encoder's RF and flattens beyond it
            slope_below = (c[min(below)] - c[max(below)]) / max(1, len(below) - 1)
            slope_above = (c[min(above)] - c[max(above)]) / max(1, len(above) - 1)
            out.append((f"a transition where r passes the encoder's receptive field ({marker:g} code steps): "
                        "the per-doubling NLL drop beyond it is under half the drop before it",
                        slope_above < 0.5 * slope_below))
        else:
            out.append((f"a transition at the encoder's receptive field ({marker:g} code steps)", None))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="cpu", choices=list(SETTINGS))
    parser.add_argument("--data")
    parser.add_argument("--out")
    parser.add_argument("--checkpoint", help="ADA run folder (default: the Table 1 row 1.2 run of this scale)")
    parser.add_argument("--skip-codes", action="store_true")
    args = parser.parse_args(argv)
    s = SETTINGS[args.scale]
    out = args.out or os.path.join("runs", f"figure2-{args.scale}")
    os.makedirs(out, exist_ok=True)
    data_dir = args.data or table1.default_data(args.scale)
    from tf_ada import data
    eval_split = data.load_manifest(data_dir).get("eval_split", "eval")
    t0 = time.monotonic()
    timings = {}
    audio_csv = os.path.join(out, "profile_audio.csv")
    if os.path.exists(audio_csv):
        audio = pred.read_csv(audio_csv)
    else:
        train = pred.audio_sequences(data_dir, s["max_train"], "train")
        ev = pred.audio_sequences(data_dir, s["max_eval"], eval_split)
        audio = pred.profile(train, ev, s["audio_rf"], 256, hidden=s["hidden"], max_steps=s["max_steps"])
        pred.write_csv(audio_csv, audio)
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
        train, n_codes, cfg = pred.code_sequences(data_dir, checkpoint, s["max_train"] // cfg_hop(checkpoint), "train")
        ev, _, _ = pred.code_sequences(data_dir, checkpoint, s["max_eval"] // cfg_hop(checkpoint), eval_split)
        marker = cfg.encoder_receptive_field_codes
        codes_csv = os.path.join(out, "profile_codes.csv")
        codes = pred.profile(train, ev, s["codes_rf"], n_codes, hidden=s["hidden"], max_steps=s["max_steps"])
        pred.write_csv(codes_csv, codes)
        timings["codes"] = time.monotonic() - t1
    png = plot_figure2(audio, codes, os.path.join(out, "figure2.png"), marker)
    lines = [f"# Figure 2 at `{args.scale}` scale", "", f"Data: `{data_dir}`. ![figure 2](figure2.png)", "",
             "| r | audio train NLL | audio eval NLL | codes train NLL | codes eval NLL |", "|---|---|---|---|---|"]
    cmap = {r["receptive_field"]: r for r in (codes or [])}
    amap = {r["receptive_field"]: r for r in audio}
    for r in sorted(set(amap) | set(cmap)):
        a, c = amap.get(r, {}), cmap.get(r, {})
        fmt = lambda d, k: f"{d[k]:.4f}" if k in d else "-"
        lines.append(f"| {r} | {fmt(a, 'train_nll')} | {fmt(a, 'eval_nll')} | {fmt(c, 'train_nll')} | {fmt(c, 'eval_nll')} |")
    lines += ["", "## The paper's claims at this scale", ""]
    for text, verdict in claims(audio, codes, marker or 0):
        lines.append(f"- **{ {True: 'holds', False: 'does not hold', None: 'not run'}[verdict] }**: {text}")
    lines += ["", f"Encoder receptive field in code steps: {marker}" if marker else "Codes profile not run.",
              "", "Run times: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in timings.items()), "",
              "Deviations: profile models are trained on a subset of the corpus "
              f"({s['max_train']:,} train / {s['max_eval']:,} held-out timesteps) with hidden size {s['hidden']}; "
              "the paper does not give its sizes. At cpu scale the ADA is the reduced #1.2 (encoder receptive "
              "field 255 samples = 32 code steps, not 64)."]
    with open(os.path.join(out, "figure2.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"figure2: wrote {png} and {os.path.join(out, 'figure2.md')}")
    return 0


def cfg_hop(checkpoint: str) -> int:
    from tf_ada.configs import Experiment
    return Experiment.load(checkpoint).model.hop


if __name__ == "__main__":
    sys.exit(main())

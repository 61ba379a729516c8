"""Figure 2 from CSVs: NLL against receptive field, audio and codes side by side.

    python -m analysis.plot_profiles --audio profile_audio.csv --codes profile_codes.csv \
        --marker 64 --out figure2.png

The r axis is logarithmic; r = 0 (the unigram entropy) is drawn separately at the left edge.
For codes, the encoder's one-sided receptive field in code steps is marked with a vertical line.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _draw(ax, results, title, marker=None, unit="timesteps"):
    zero = [r for r in results if r["receptive_field"] == 0]
    rest = sorted((r for r in results if r["receptive_field"] > 0), key=lambda r: r["receptive_field"])
    xs = [r["receptive_field"] for r in rest]
    for key, style, label in (("train_nll", "o-", "train"), ("eval_nll", "s--", "held out")):
        ses = [r.get(key + "_se") for r in rest]
        if all(se is not None and math.isfinite(se) for se in ses) and ses:  # error bars: +- 2 SE
            ax.errorbar(xs, [r[key] for r in rest], yerr=[2 * se for se in ses], fmt=style, label=label + " (± 2 SE)",
                        markersize=4, capsize=2)
        else:
            ax.plot(xs, [r[key] for r in rest], style, label=label, markersize=4)
    ax.set_xscale("log", base=2)
    if zero and xs:
        x0 = xs[0] / 2.0  # r = 0 sits half a step left of the smallest r, marked apart
        for key, style in (("train_nll", "o"), ("eval_nll", "s")):
            ax.plot([x0], [zero[0][key]], style, color="gray", markersize=5)
        ax.annotate("r = 0\n(unigram)", (x0, zero[0]["eval_nll"]), textcoords="offset points", xytext=(4, -24),
                    fontsize=8, color="gray")
        ax.axvline(x0 * 1.41, color="lightgray", linewidth=0.8)
        ticks = [x0] + [2.0 ** k for k in range(0, int(math.log2(xs[-1])) + 1)]
        ax.set_xticks(ticks)
        ax.set_xticklabels(["0"] + [str(int(t)) for t in ticks[1:]])
    if marker:
        ax.axvline(marker, color="tab:red", linestyle=":", label=f"encoder RF ({marker:g} code steps)")
    ax.set_xlabel(f"receptive field r ({unit}, log scale)")
    ax.set_ylabel("NLL (nats per timestep)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def plot_profile(results, path: str, title: str, marker: Optional[float] = None) -> str:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    _draw(ax, results, title, marker, unit="code steps" if marker else "samples")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_figure2(audio, codes, path: str, marker: Optional[float] = None) -> str:
    """Both panels side by side, like the paper's Figure 2."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    _draw(axes[0], audio, "Waveforms (8-bit mu-law)", unit="samples")
    if codes:
        _draw(axes[1], codes, "Codes of ADA #1.2", marker, unit="code steps")
    else:
        axes[1].set_axis_off()
        axes[1].text(0.5, 0.5, "codes profile not run", ha="center")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    from analysis.predictability import read_csv
    from tf_ada.cli import HelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--audio", required=True, help="profile_audio.csv (python -m analysis.predictability)")
    parser.add_argument("--codes", help="profile_codes.csv (default: the audio panel only)")
    parser.add_argument("--marker", type=float, help="encoder receptive field in code steps (a vertical line)")
    parser.add_argument("--out", required=True, help="the figure to write (.png)")
    args = parser.parse_args(argv)
    plot_figure2(read_csv(args.audio), read_csv(args.codes) if args.codes else None, args.out, args.marker)
    print(f"plot_profiles: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make demo`: the main job on the built-in default data, in under 15 minutes on 2 cores.

1. builds (or reuses) the default rendered piano corpus (CORPUS.md);
2. runs Table 1 at a demo scale: the `cpu`-scale models for a few dozen steps each (the
   numbers show the pipeline end to end; `python -m reproduce.table1 --scale cpu` is the reduced
   reproduction);
3. reconstructs held-out excerpts with every ADA row;
4. writes runs/demo/: table1.md, the wavs, and index.html that plays each original beside its
   reconstructions.
"""
from __future__ import annotations

import argparse
import html
import os
import shutil
import sys
import time

from reproduce import paper, table1
from tf_ada import fileio


def write_index(out: str, results: dict, md: str) -> str:
    audio_dir = os.path.join(out, "audio")
    os.makedirs(audio_dir, exist_ok=True)
    originals, recons = {}, {}
    for row, r in results.items():
        for i, pair in enumerate(r.get("reconstructions", [])):
            orig = os.path.join(audio_dir, f"excerpt{i}_original.wav")
            if not os.path.exists(orig):
                shutil.copyfile(pair["original"], orig)
            originals[i] = os.path.relpath(orig, out)
            dst = os.path.join(audio_dir, f"excerpt{i}_row{row}.wav")
            shutil.copyfile(pair["reconstruction"], dst)
            recons.setdefault(i, []).append((row, os.path.relpath(dst, out)))
    parts = ["<!doctype html><meta charset='utf-8'><title>tf-ada demo</title>",
             "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}td,th{padding:4px 8px}"
             "table{border-collapse:collapse}tr:nth-child(even){background:#f4f4f4}</style>",
             "<h1>tf-ada demo: Table 1 at demo scale</h1>",
             "<p>Held-out excerpts of the built-in rendered piano corpus, and their reconstructions by each ADA "
             "(encode to codes, then sample the local model given the codes). Demo-scale models are trained for a "
             "few dozen steps: expect noise, not piano.</p>"]
    for i in sorted(originals):
        parts.append(f"<h2>Excerpt {i}</h2><table><tr><th>what</th><th>audio</th></tr>")
        parts.append(f"<tr><td>original</td><td><audio controls src='{html.escape(originals[i])}'></audio></td></tr>")
        for row, path in recons[i]:
            p = paper.TABLE1[row]
            label = f"#{row} {p['model']} ({p['input']}, hop {p['hop']})"
            parts.append(f"<tr><td>{html.escape(label)}</td>"
                         f"<td><audio controls src='{html.escape(path)}'></audio></td></tr>")
        parts.append("</table>")
    parts.append("<h2>Table 1</h2><pre>" + html.escape(md) + "</pre>")
    path = os.path.join(out, "index.html")
    fileio.atomic_write_text(path, "\n".join(parts))
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--steps", type=int, default=30, help="steps per Table 1 row")
    parser.add_argument("--scale", default="cpu", choices=["tiny", "cpu"])
    parser.add_argument("--hours", type=float, default=3.0, help="size of the default corpus")
    parser.add_argument("--rows", default=",".join(paper.TABLE1))
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    from tf_ada import data
    data_dir = table1.default_data(args.scale, hours=args.hours)
    print(data.summary(data.load_manifest(data_dir)))
    out = args.out
    os.makedirs(out, exist_ok=True)
    results = {}
    for row in args.rows.split(","):
        # a few dozen steps: a short Polyak horizon (0.9), else evaluation would see mostly the initial weights
        results[row] = table1.run_row(row, args.scale, data_dir, os.path.join(out, "runs"), args.steps,
                                      eval_batches=5, polyak_decay=0.9)
        md = table1.write_report(results, args.scale, out, data_dir,
                                 title=f"# Table 1 at demo scale (`{args.scale}`-scale models, "
                                       f"{args.steps} steps per row)")
    index = write_index(out, results, md)
    print(md)
    print(f"demo: finished in {(time.monotonic() - t0) / 60:.1f} min")
    print(f"demo: table   {os.path.join(out, 'table1.md')}")
    print(f"demo: audio   {os.path.join(out, 'audio')}")
    print(f"demo: listen  {index}  (open in a browser)")
    fileio.atomic_write_json(os.path.join(out, "demo.json"), {"minutes": (time.monotonic() - t0) / 60,
                                                               "rows": list(results)})
    return 0


if __name__ == "__main__":
    sys.exit(main())

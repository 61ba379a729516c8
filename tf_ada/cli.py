"""The `tf-ada` command line: prepare | demo (more sub-commands arrive with later parts)."""
from __future__ import annotations

import argparse
import os
import sys


def _cmd_prepare(args) -> int:
    from tf_ada import data
    overrides = None
    if args.splits:
        import csv
        with open(args.splits, newline="") as f:
            overrides = {row[0]: row[1] for row in csv.reader(f) if len(row) >= 2}
    options = data.PrepareOptions(eval_fraction=args.eval_fraction, seed=args.seed, min_seconds=args.min_seconds,
                                  normalize=args.normalize, split_overrides=overrides)
    manifest = data.prepare(args.src, args.out, options)
    print(data.summary(manifest))
    print(f"wrote {os.path.join(args.out, data.MANIFEST)}")
    return 0


def _cmd_corpus(args) -> int:
    from tf_ada.corpus import build
    sources = args.sources.split(",") if args.sources else build.ALL_SOURCES
    info = build.build(args.out, hours=args.hours, sources=sources, tiny=args.tiny, jobs=args.jobs, seed=args.seed)
    for source, s in sorted(info["sources"].items()):
        print(f"  {source:>11}: {s['pieces']:4d} pieces  {s['hours']:.2f} h" + ("  (solo piano)" if s["solo_piano"] else ""))
    print(f"  {'total':>11}: {info['total_hours']:.2f} h; {len(info['failed'])} piece(s) failed (see corpus.json)")
    from tf_ada import data
    print(data.summary(data.load_manifest(os.path.join(args.out, "data"))))
    print(f"corpus: shards in {os.path.join(args.out, 'data')}")
    return 0


def _cmd_demo(args) -> int:
    """The main job on the built-in default data: build (or reuse) the rendered piano corpus."""
    from tf_ada import data
    from tf_ada.corpus import build
    out = os.path.join(args.out, "corpus")
    print(f"demo: building the default piano corpus ({args.hours} h) in {out}; cached after the first run")
    info = build.build(out, hours=args.hours, tiny=args.tiny, jobs=args.jobs)
    for source, s in sorted(info["sources"].items()):
        print(f"  {source:>11}: {s['pieces']:4d} pieces  {s['hours']:.2f} h")
    print(data.summary(data.load_manifest(os.path.join(out, "data"))))
    print(f"demo: shards in {os.path.join(out, 'data')}; corpus details in {os.path.join(out, 'corpus.json')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tf-ada", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="recordings folder (or MAESTRO layout) -> TFRecord shards + manifest.json")
    p.add_argument("src", help="folder of .wav/.flac/.ogg/.mp3 files, or a MAESTRO folder with its CSV")
    p.add_argument("out", help="output folder (re-run to resume)")
    p.add_argument("--eval-fraction", type=float, default=0.01, help="share of pieces held out (paper: 0.01)")
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.add_argument("--min-seconds", type=float, default=1.0, help="skip recordings shorter than this")
    p.add_argument("--normalize", action="store_true", help="scale each recording to peak 0.99")
    p.add_argument("--splits", help="CSV of `relative_path_or_piece,split` rows overriding the split")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("corpus", help="the built-in piano corpus")
    corpus_sub = p.add_subparsers(dest="corpus_command", required=True)
    p = corpus_sub.add_parser("build", help="render real compositions with the sampled piano, then prepare")
    p.add_argument("out")
    p.add_argument("--hours", type=float, default=3.0, help="all solo piano, plus other material up to this total")
    p.add_argument("--sources", help="comma-separated subset of jam,keyboard,chorales,quartets,palestrina")
    p.add_argument("--tiny", action="store_true", help="about one minute (two pieces), for tests")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_corpus)

    p = sub.add_parser("demo", help="the main job on the built-in default data")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--hours", type=float, default=3.0)
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except Exception as e:  # clear one-line errors for the expected failure kinds
        from tf_ada.data import DataError
        from tf_ada.corpus.fetch import MissingToolError
        if isinstance(e, (DataError, MissingToolError, FileNotFoundError)):
            print(f"tf-ada {args.command}: error: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())

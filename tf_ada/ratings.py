"""Mean opinion scores of Table 3 (sec. 4.4): summarising the blind listening study's ratings.

The paper's informal blind study asked raters to listen to four samples of each model and rate it out
of five for signal fidelity and for musicality; Table 3 reports the mean and the standard error of
the ratings across 28 raters' responses. Our listening page (`reproduce/listening.py`, its blind
mode) asks for a 1-5 rating of both per sample, under an opaque item id, and exports one JSON file
per rater; the page's `key.json` maps each id to its stack (or to "real" for a held-out excerpt).

`summarize` follows the paper's unit of analysis, the rater: each rater's ratings of a stack's
samples are averaged first (one score per rater and stack, as the paper's one rating per model),
then the mean and standard error are taken across raters (SE = sd with ddof=1 / sqrt(n_raters)).
Pooling every rating instead would weight a rater by how many samples they rated; the two differ
whenever raters rate different numbers of samples. With one rater the SE is undefined: it is nan
and the table writers say "n/a (1 rater)".

Files (written by the page; `FORMAT` and `KEY_FORMAT` name their versions):

    ratings: {"format": "tf-ada-ratings/1", "rater": "name", "ratings": [{"item": "x3f9a1c",
              "fidelity": 1-5 or null, "musicality": 1-5 or null}, ...], ...}
    key:     {"format": "tf-ada-listening-key/1", "items": {"x3f9a1c": {"stack": "3.6", ...}, ...},
              "stacks": {"3.6": {"description": "..."}, ...}}

A null rating (not given) is skipped; each rater counts for a stack and measure when they rated at
least one of its samples for it. Command line:

    python -m tf_ada.ratings summarize FILE [FILE ...] --key KEY [--out table.md|table.csv]

Dependency-free (json and numpy), so that a rating round can be summarised anywhere.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from typing import Optional

import numpy as np

FORMAT = "tf-ada-ratings/1"
KEY_FORMAT = "tf-ada-listening-key/1"
MEASURES = ("fidelity", "musicality")
SCALE = (1, 5)  # "rate the model out of five" (sec. 4.4)
REAL = "real"  # the key's stack for a held-out excerpt


class RatingsError(ValueError):
    """A ratings or key file that cannot be summarised; the message names the file and the problem."""


class ListeningError(ValueError):
    """A sample folder or excerpt the listening page (`reproduce.listening.write_listening_page`)
    cannot show; the message names it. Defined here, in the library, so that the command line
    (`tf_ada.cli.expected_errors`) knows it without importing `reproduce`."""


def _load_json(path: str, what: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise RatingsError(f"{path}: {what} file does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RatingsError(f"{path}: not a JSON {what} file ({e})") from None
    if not isinstance(data, dict):
        raise RatingsError(f"{path}: a {what} file holds a JSON object, not {type(data).__name__}")
    return data


def read_key(path: str) -> dict:
    """key.json -> {item id: stack}."""
    data = _load_json(path, "listening key")
    items = data.get("items")
    if not isinstance(items, dict) or not items:
        raise RatingsError(f"{path}: a listening key has a non-empty \"items\" object {{id: {{stack: ...}}}}")
    out = {}
    for item, entry in items.items():
        stack = entry.get("stack") if isinstance(entry, dict) else None
        if not isinstance(stack, str) or not stack:
            raise RatingsError(f"{path}: item {item!r} has no \"stack\"")
        out[item] = stack
    return out


def stack_descriptions(path: str) -> dict:
    """key.json's {stack: description} (empty where the key does not say)."""
    stacks = _load_json(path, "listening key").get("stacks") or {}
    return {s: (v.get("description") or "") for s, v in stacks.items() if isinstance(v, dict)}


def _rating(value, path: str, item: str, measure: str) -> Optional[int]:
    if value is None:
        return None
    integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not integral or not SCALE[0] <= value <= SCALE[1]:
        raise RatingsError(f"{path}: item {item!r}: {measure} rating {value!r} is not a whole number "
                           f"from {SCALE[0]} to {SCALE[1]}")
    return int(value)


def read_ratings(path: str, key: dict, page: Optional[str] = None) -> tuple[str, dict]:
    """One rater's export -> (rater, {item: {measure: rating or None}}); every item must be in `key`
    ({item: stack}, `read_key`), once; with `page` (the key's page id), the export must come from that
    build of the page."""
    data = _load_json(path, "ratings")
    if data.get("format", FORMAT) != FORMAT:
        raise RatingsError(f"{path}: format {data.get('format')!r}, expected {FORMAT!r}")
    if page and data.get("page") and data["page"] != page:
        raise RatingsError(f"{path}: ratings of page build {data['page']!r}, but the key is of build {page!r} "
                           "(the page was rebuilt: use the key.json written with the page that was rated)")
    rater = data.get("rater")
    if not isinstance(rater, str) or not rater.strip():
        raise RatingsError(f"{path}: no rater name (\"rater\")")
    entries = data.get("ratings")
    if not isinstance(entries, list):
        raise RatingsError(f"{path}: \"ratings\" must be a list of {{item, fidelity, musicality}}")
    out = {}
    for entry in entries:
        if not isinstance(entry, dict) or "item" not in entry:
            raise RatingsError(f"{path}: every rating needs an \"item\", got {entry!r}")
        item = entry["item"]
        if item not in key:
            raise RatingsError(f"{path}: unknown item id {item!r} (not in the listening key: a rating of "
                               "another page?)")
        if item in out:
            raise RatingsError(f"{path}: item {item!r} rated twice")
        out[item] = {m: _rating(entry.get(m), path, item, m) for m in MEASURES}
    return rater.strip(), out


def rater_means(rating_files: list, key_path: str) -> dict:
    """{stack: {measure: {rater: the rater's mean rating of the stack's samples}}} (raters who rated
    none of a stack's samples for a measure are absent there)."""
    if not rating_files:
        raise RatingsError("no ratings files given")
    key = read_key(key_path)
    page = _load_json(key_path, "listening key").get("page")
    seen: dict = {}
    out: dict = {}
    for path in rating_files:
        rater, ratings = read_ratings(path, key, page)
        if rater in seen:
            raise RatingsError(f"{path}: rater {rater!r} already rated in {seen[rater]}; each rater counts once "
                               "(merge the files or rename the rater)")
        seen[rater] = path
        by_stack: dict = {}
        for item, values in ratings.items():
            for m, v in values.items():
                if v is not None:
                    by_stack.setdefault(key[item], {}).setdefault(m, []).append(v)
        for stack, measures in by_stack.items():
            for m, values in measures.items():
                out.setdefault(stack, {}).setdefault(m, {})[rater] = float(np.mean(values))
    return out


def mean_se(values) -> tuple[float, float, int]:
    """(mean, standard error = sd(ddof=1) / sqrt(n), n) of per-rater scores; SE is nan for n = 1."""
    x = np.asarray(list(values), np.float64)
    n = int(x.size)
    if n == 0:
        return float("nan"), float("nan"), 0
    se = float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return float(x.mean()), se, n


def summarize(rating_files: list, key_path: str) -> dict:
    """Table 3's human evaluation (sec. 4.4): per stack, for fidelity and musicality, the mean and the
    standard error across raters of each rater's mean rating of the stack's samples.

    Args:
      rating_files: one JSON export per rater (the listening page's "export ratings").
      key_path: the page's key.json (item id -> stack).

    Returns:
      {stack: {"fidelity": (mean, se, n_raters), "musicality": (mean, se, n_raters)}}, stacks in
      order (Table 3's rows, then the real excerpts under "real"); se is nan with one rater. A
      measure no rater rated for a stack is (nan, nan, 0).

    Raises:
      RatingsError: a file that is missing, not JSON, without a rater, with a rating outside 1-5, an
        item id not in the key, an item rated twice, a rater who appears in two files, or an export
        of another build of the page than the key's.
    """
    means = rater_means(rating_files, key_path)
    return {stack: {m: mean_se(means[stack].get(m, {}).values()) for m in MEASURES}
            for stack in sorted(means, key=_stack_order)}


def _stack_order(stack: str):
    head = stack.split()[0]
    try:
        return (0, tuple(int(p) for p in head.split(".")), stack)
    except ValueError:
        return (1 if stack == REAL else 2, (), stack)


# --- Table 3's columns --------------------------------------------------------------------------------

def _cell(mean: float, se: float, n: int) -> str:
    if n == 0:
        return "-"
    if n == 1:
        return f"{mean:.2f} ± n/a (1 rater)"
    return f"{mean:.2f} ± {se:.2f}"


def _description(stack: str, descriptions: Optional[dict]) -> str:
    if descriptions and descriptions.get(stack):
        return descriptions[stack]
    if stack == REAL:
        return "real held-out excerpts"
    from tf_ada import rows  # pure Python: the paper's rows
    spec = rows.TABLE3.get(stack.split()[0])
    return spec.description if spec else ""


def _raters(cells: dict) -> str:
    counts = sorted({n for _, _, n in cells.values()})
    return str(counts[0]) if len(counts) == 1 else "/".join(str(cells[m][2]) for m in MEASURES)


def markdown_table(summary: dict, descriptions: Optional[dict] = None) -> str:
    """Table 3's human-evaluation columns as markdown: stack, model, fidelity and musicality (mean ±
    standard error across raters), raters (fidelity/musicality when they differ)."""
    lines = ["| # | model | fidelity (mean ± SE) | musicality (mean ± SE) | raters |", "|---|---|---|---|---|"]
    for stack, cells in summary.items():
        lines.append(f"| {stack} | {_description(stack, descriptions)} | {_cell(*cells['fidelity'])} | "
                     f"{_cell(*cells['musicality'])} | {_raters(cells)} |")
    lines += ["", "Ratings 1-5; each rater's mean over a stack's samples first, then the mean and standard error "
              "(sd with ddof=1 / sqrt(raters)) across raters, as Table 3 (sec. 4.4, 28 raters in the paper)."]
    if any(n == 1 for cells in summary.values() for _, _, n in cells.values()):
        lines.append("With one rater the standard error is undefined (n/a).")
    return "\n".join(lines) + "\n"


def csv_table(summary: dict, descriptions: Optional[dict] = None) -> str:
    """The same columns as CSV, numbers unformatted (SE empty when undefined)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["stack", "model", "fidelity_mean", "fidelity_se", "fidelity_raters", "musicality_mean",
                     "musicality_se", "musicality_raters"])
    for stack, cells in summary.items():
        row = [stack, _description(stack, descriptions)]
        for m in MEASURES:
            mean, se, n = cells[m]
            row += ["" if not math.isfinite(mean) else f"{mean:.6g}", "" if not math.isfinite(se) else f"{se:.6g}", n]
        writer.writerow(row)
    return buf.getvalue()


def write_table(summary: dict, path: str, descriptions: Optional[dict] = None) -> str:
    """Writes `markdown_table` (path ending .md) or `csv_table` (.csv); returns `path`."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".md", ".csv"):
        raise RatingsError(f"{path}: the table is written as .md or .csv")
    text = csv_table(summary, descriptions) if ext == ".csv" else markdown_table(summary, descriptions)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def main(argv: Optional[list] = None, prog: Optional[str] = None) -> int:
    parser = argparse.ArgumentParser(prog=prog or "python -m tf_ada.ratings",
                                     description="Table 3's mean opinion scores from the listening page's exports")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summarize", help="per stack: mean and standard error across raters of fidelity and "
                                         "musicality (each rater's mean first)")
    p.add_argument("files", nargs="+", metavar="FILE", help="one exported ratings JSON per rater")
    p.add_argument("--key", required=True, metavar="KEY", help="the listening page's key.json")
    p.add_argument("--out", metavar="TABLE", help="also write the table here (.md or .csv)")
    args = parser.parse_args(argv)
    try:
        summary = summarize(args.files, args.key)
        descriptions = stack_descriptions(args.key)
        print(markdown_table(summary, descriptions), end="")
        if args.out:
            write_table(summary, args.out, descriptions)
            print(f"wrote {args.out}")
    except RatingsError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

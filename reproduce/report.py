"""Report helpers shared by every reproduce script: numbers with standard errors, and verdicts.

Every verdict goes through `tf_ada.evaluation.verdict` (issue 10): a claim *holds* only when the
difference it is about exceeds two standard errors in the claimed direction, *does not hold* only
when it exceeds two in the other, and is *inconclusive* otherwise. Differences between rows are
paired: both rows' per-window sums on the same held-out windows (`eval_sequences.npz` in each
run folder), standard errors clustered by work.

A claim is data (reproduce/paper.py): a text and a list of conditions. A condition is
`(terms, statistic, constant, sign)`: the linear combination sum_term weight * statistic(term)
+ constant should have sign `sign` (-1: below zero, +1: above). A term is a row ("1.2", judged
under the protocol being reported) or a (row, protocol) pair (to compare protocols), and the
statistic is "nll" or "perplexity" on the held-out split.
"""
from __future__ import annotations

import math
import os
from typing import Optional

from tf_ada import evaluation as ev

NOT_RUN = "not run"


def fmt(value, se=None, digits: int = 3) -> str:
    """"0.734 ± 0.012"; "-" when there is no value; the SE is left out when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if not isinstance(value, float):
        return str(value)
    if se is None or not math.isfinite(se):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ± {se:.{digits}f}"


def load_sequences(run_dir: str) -> Optional[dict]:
    """{(split, protocol): Results} of a run folder's latest evaluation, or None if it has none."""
    path = os.path.join(run_dir, ev.SEQUENCES_FILE)
    if not os.path.exists(path):
        return None
    return ev.load_results(path)[0]


def _estimate(results: ev.Results, statistic: str, protocol: str) -> Optional[ev.Estimate]:
    if statistic == "nll":
        return ev.nll_estimate(results)
    if statistic == "perplexity":
        return ev.perplexity_estimate(results, protocol)
    raise ValueError(f"unknown statistic {statistic!r}")


def condition_estimate(rows: dict, terms: dict, statistic: str, constant: float, protocol: str,
                       split: str = "eval") -> Optional[ev.Estimate]:
    """The estimate of sum_term weight * statistic(term) + constant on the windows every term's row
    was evaluated on (paired); None when a row, its per-window sums or the statistic is missing.

    Args:
      rows: {row: {(split, protocol): Results}} (from `load_sequences`).
      terms: {row or (row, protocol): weight}.
    """
    keys = [(t, protocol) if isinstance(t, str) else tuple(t) for t in terms]
    try:
        found = [rows[r][(split, p)] for r, p in keys]
    except (KeyError, TypeError):
        return None
    aligned = ev.align(*found)
    if not len(aligned[0]):
        return None
    total = None
    for (row, p), weight, res in zip(keys, terms.values(), aligned):
        est = _estimate(res, statistic, p)
        if est is None:
            return None
        total = est * weight if total is None else total + est * weight
    return total + constant


def judge(rows: dict, conditions, protocol: str, split: str = "eval") -> tuple[str, list]:
    """(verdict of the whole claim, [(estimate or None, sign) per condition]) under `protocol`.
    A claim with any condition that cannot be evaluated is "not run"."""
    parts = []
    for terms, statistic, constant, sign in conditions:
        parts.append((condition_estimate(rows, terms, statistic, constant, protocol, split), sign))
    if any(e is None for e, _ in parts):
        return NOT_RUN, parts
    return ev.combine(ev.verdict(e.value, e.se, sign) for e, sign in parts), parts


PROTOCOL_LABELS = {"paper": "1-s sequences", "full": "full context"}


def claim_verdicts(rows: dict, conditions, protocols=ev.PROTOCOLS, split: str = "eval") -> list:
    """[(protocol label, verdict, differences as "value ± SE (want < 0); ...")] of one claim."""
    out = []
    for protocol in protocols:
        verdict, parts = judge(rows, conditions, protocol, split)
        detail = "; ".join(fmt(e.value, e.se, 4) + (" (want < 0)" if s < 0 else " (want > 0)")
                           for e, s in parts if e is not None)
        out.append((PROTOCOL_LABELS.get(protocol, protocol), verdict, detail))
    return out


def claim_line(text: str, rows: dict, conditions, protocols=ev.PROTOCOLS, split: str = "eval") -> str:
    """One markdown bullet: the claim, then its verdict and differences under each protocol."""
    out = [f"{label}: **{verdict}**" + (f" [{detail}]" if detail else "")
           for label, verdict, detail in claim_verdicts(rows, conditions, protocols, split)]
    return f"- {text}: " + "; ".join(out)


def claims_table(claims, rows: dict, protocols=ev.PROTOCOLS, split: str = "eval"):
    """An HTML table (reproduce/pages.py) of claims [(text, conditions)]: per protocol, the
    verdict badge and the differences it rests on."""
    from reproduce import pages
    header = ["claim"]
    for protocol in protocols:
        header += [PROTOCOL_LABELS.get(protocol, protocol), "differences (value ± SE)"]
    body = []
    for text, conditions in claims:
        cells = [text]
        for _, verdict, detail in claim_verdicts(rows, conditions, protocols, split):
            cells += [pages.verdict(verdict), pages.Raw("<br>".join(pages.esc(d) for d in detail.split("; ")))
                      if detail else None]
        body.append(cells)
    return pages.table(header, body)


def row_run_dir(result: dict, found_at: str) -> str:
    """A finished row's run folder: the one its row.json records, unless row.json lacks it or that
    folder is gone (a results folder copied or moved elsewhere, or a run made from a copy of the
    tree), then `found_at` (the folder holding that row.json)."""
    recorded = result.get("run_dir")
    return recorded if recorded and os.path.isdir(recorded) else os.path.abspath(found_at)


def resolve_run_dir(result: dict, row_json: str) -> str:
    """The real path of the run folder of a finished row.json at `row_json` (`row_run_dir`; a PBT
    row's row.json lies in its population folder and names its best member's folder, found under
    members/ there): the same string whether it was recorded through a copy of the tree that still
    links to it or is found beside row.json once that copy is gone."""
    here = os.path.dirname(row_json)
    if result.get("pbt") and result.get("run_dir"):
        here = os.path.join(here, "members", os.path.basename(result["run_dir"].rstrip("/")))
    return os.path.realpath(row_run_dir(result, here))


def training_minutes(row_dir: str, fallback: float) -> tuple:
    """(minutes, source): a run's training time over every invocation, from its train.log's and
    TensorBoard event times (pauses over 30 min left out; `pretrained.wall_time`), else `fallback`
    (this invocation's wall time). A row resumed across sessions is timed whole, not only its last
    stretch (Table 1's row 1.3 printed 0.1 min, the resumed stretch, for about 35 min of training)."""
    from tf_ada import pretrained
    seconds, source = pretrained.wall_time(row_dir)
    return (seconds / 60, source) if seconds else (fallback, "this invocation")


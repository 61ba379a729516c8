"""The listening pages of Table 3 (sec. 4.4): every sample of every stack, real excerpts, and a blind rating page.

    python -m reproduce.listening --samples DIR [DIR ...] --real WAV [WAV ...] --out DIR [--title T] [--seed S]

`write_listening_page` reads sample folders written by `tf_ada.stacks.sample_stack` (the wavs their
samples.json lists, `tf_ada.stacks.sample_wavs`: audio/stream_NN.wav, level_ROLE/stream_NN.wav) and
writes two pages:

* **named** (OUT/index.html): an overview of the stacks (description, levels, receptive field ours and
  the paper's, seconds per wall-clock second), then per stack its facts (seeds, temperatures, level
  experiments) and a player with a spectrogram beside it for every stream at every level: the stack's
  samples (audio/) and each code level rendered through the levels below (level_ROLE/); then the real
  held-out excerpts. Media are copied beside the page (`pages.asset`), so the folder is self-contained.
* **blind** (OUT/blind/index.html, a folder of its own): the stacks' samples (audio/, the top-down
  output) and the real excerpts, shuffled, each under an opaque id with a copy of its wav named by
  that id (OUT/blind/ID.wav, re-encoded as 16-bit mono, optionally cut to `blind_seconds`). The
  folder holds that page and those wavs only: no named page, no assets/ (whose copies of the same
  audio would map ids to stacks), no key and no provenance, so that neither the page nor the files'
  names, headers or neighbours say which stack made an item. Hand raters OUT/blind/ alone. Each
  item has a 1-5 rating of fidelity and of
  musicality, as the paper's informal blind study (sec. 4.4: raters "rate the model out of five in
  terms of fidelity and musicality"; Table 3 reports mean and standard error across 28 raters; the
  paper's raters rated each model after four samples, ours rate each sample and
  `tf_ada.ratings.summarize` averages each rater's ratings of a stack first). A rater name field and
  "export ratings" produce the JSON of `tf_ada.ratings` (rater, page id, [{item, fidelity,
  musicality}]) as a download and in the page's textarea (#ratings-json). Ratings are kept in the
  browser's localStorage between visits; the display order is shuffled again on each visit.

The id -> stack key goes to OUT/key.json (never into a page): keep it away from raters, and give it
to `python -m tf_ada.ratings summarize FILES --key OUT/key.json`. It records the sha256 of every
source file. The page id and the blind ids derive from `seed` and those contents (and
`blind_seconds`): rebuilding from the same files with the same seed gives the same page, and a
rebuild from changed audio gets a new page id, so that ratings of the older build are refused by
the key (without a seed every build draws new ids).

The page carries one inline script and no external resource (nothing loaded from the network).
"""
from __future__ import annotations

import argparse
import datetime
import glob
import hashlib
import json
import os
import random
import sys
from typing import Optional

from reproduce import pages
from reproduce.pages import Raw, esc
from tf_ada import ratings, rows
from tf_ada.ratings import ListeningError  # a sample folder or excerpt the page cannot show

BLIND_DIR = "blind"
KEY_FILE = "key.json"

# fidelity and musicality as put to the raters (the paper notes that their meanings are ambiguous)
QUESTIONS = {
    "fidelity": "signal fidelity: how clean and realistic does the sound itself sound (noise, distortion, "
                "artefacts)? 1 = very poor, 5 = indistinguishable from a recording",
    "musicality": "musicality: how musical is the excerpt (harmony, rhythm, phrasing, coherence over time)? "
                  "1 = not at all, 5 = very musical",
}

STYLE = """
.modes a{margin-right:1em;font-weight:600}
.items{display:flex;flex-direction:column;gap:10px;margin:1em 0}
.item{border:1px solid #ccc;border-radius:4px;padding:6px 10px;display:flex;flex-wrap:wrap;gap:14px;align-items:center}
.item .num{font-weight:600;min-width:2.2em}.item audio{width:300px;height:32px}
.item fieldset{border:none;margin:0;padding:0}.item legend{font-size:0.85em;color:#555;padding:0}
.item label{margin-right:6px;white-space:nowrap}.item.done{background:#f2f8f2}
#ratings-json{width:100%;height:9em;font-family:monospace;font-size:0.8em}
"""

SCRIPT = """
(function () {
  'use strict';
  var MEASURES = %(measures)s, PAGE = %(page)s, FORMAT = %(format)s;
  var list = document.getElementById('blind-items');
  var items = Array.prototype.slice.call(list.querySelectorAll('.item'));
  var raterInput = document.getElementById('rater'), out = document.getElementById('ratings-json');
  var status = document.getElementById('rating-status'), store = 'tf-ada-ratings:' + PAGE;
  for (var i = items.length - 1; i > 0; i--) {  // a new order on every visit
    var j = Math.floor(Math.random() * (i + 1)), t = items[i]; items[i] = items[j]; items[j] = t;
  }
  items.forEach(function (el, k) { list.appendChild(el); el.querySelector('.num').textContent = (k + 1) + '.'; });
  function value(el, m) {
    var c = el.querySelector('input[name="' + m + '-' + el.dataset.item + '"]:checked');
    return c ? Number(c.value) : null;
  }
  function collect() {
    return items.map(function (el) {
      var r = {item: el.dataset.item};
      MEASURES.forEach(function (m) { r[m] = value(el, m); });
      return r;
    }).sort(function (a, b) { return a.item < b.item ? -1 : 1; });
  }
  function update() {
    var done = 0;
    items.forEach(function (el) {
      var full = MEASURES.every(function (m) { return value(el, m) !== null; });
      el.classList.toggle('done', full); done += full ? 1 : 0;
    });
    status.textContent = done + ' of ' + items.length + ' items rated';
    try { localStorage.setItem(store, JSON.stringify({rater: raterInput.value, ratings: collect()})); } catch (e) {}
  }
  try {  // ratings of an earlier visit (same page build)
    var saved = JSON.parse(localStorage.getItem(store) || 'null');
    if (saved) {
      raterInput.value = saved.rater || '';
      saved.ratings.forEach(function (r) {
        MEASURES.forEach(function (m) {
          var input = document.querySelector('input[name="' + m + '-' + r.item + '"][value="' + r[m] + '"]');
          if (input) { input.checked = true; }
        });
      });
    }
  } catch (e) {}
  list.addEventListener('change', update); raterInput.addEventListener('input', update); update();
  document.getElementById('export').addEventListener('click', function () {
    var rater = raterInput.value.trim();
    if (!rater) { status.textContent = 'enter your name before exporting'; raterInput.focus(); return; }
    var doc = {format: FORMAT, page: PAGE, title: document.title, rater: rater,
               exported: new Date().toISOString(), ratings: collect()};
    var text = JSON.stringify(doc, null, 1);
    out.textContent = text; out.value = text;  // the DOM (a saved page, --dump-dom) and the field
    try {
      var a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([text], {type: 'application/json'}));
      a.download = 'ratings_' + rater.replace(/[^A-Za-z0-9_.-]+/g, '_') + '.json';
      document.body.appendChild(a); a.click(); a.remove();
    } catch (e) {}
    var missing = doc.ratings.filter(function (r) {
      return MEASURES.some(function (m) { return r[m] === null; }); }).length;
    status.textContent = 'exported ' + doc.ratings.length + ' items' +
      (missing ? ' (' + missing + ' not fully rated)' : '') + ': send the downloaded file (or the text below)';
  });
})();
"""


# --- sample folders ----------------------------------------------------------------------------------

def _scale(info: dict) -> Optional[str]:
    """The scale of a stack's levels, read from its experiments' names (`..._cpu`), if they say."""
    from tf_ada.configs import SCALES
    found = {s for name in (info.get("experiments") or {}).values() for s in SCALES if str(name).endswith("_" + s)}
    return found.pop() if len(found) == 1 else None


def _receptive_field_ms(info: dict, row: str) -> Optional[float]:
    """samples.json's receptive field; else computed from the stack's configs when its scale is known."""
    if isinstance(info.get("receptive_field_ms"), (int, float)):
        return float(info["receptive_field_ms"])
    scale = _scale(info)
    if row in rows.TABLE3 and scale:
        from tf_ada import stacks
        return round(stacks.stack(row, scale).receptive_field_ms, 2)
    return None


def read_sample_folder(folder: str) -> dict:
    """What the page shows of one `sample_stack` folder: {folder, row, description, info (samples.json,
    {} without one), rf_ms, paper_rf_ms, streams: [wav], levels: [(role, label, [wav])], top-down}:
    the wavs samples.json lists (`tf_ada.stacks.sample_wavs`), never stale files beside them."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: sample folder does not exist")
    info = {}
    path = os.path.join(folder, "samples.json")
    if os.path.exists(path):
        try:
            with open(path) as f:
                info = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ListeningError(f"{path}: not JSON ({e})") from None
    from tf_ada.stacks import StackError, sample_wavs
    try:
        streams = sample_wavs(folder)
    except StackError as e:
        raise ListeningError(str(e)) from None
    if not streams:
        raise ListeningError(f"{folder}: no audio/*.wav (not a folder written by tf_ada.stacks.sample_stack)")
    row = str(info.get("stack") or os.path.basename(os.path.normpath(folder)))
    spec = rows.TABLE3.get(row)
    renders = info.get("level_renders") or {}
    if info:  # the levels samples.json says were rendered, nothing else lying in the folder
        roles = [r for r in info.get("levels_top_down", []) if r in renders]
    else:  # a folder without samples.json: the level folders on disk
        roles = sorted(os.path.basename(d)[len("level_"):] for d in glob.glob(os.path.join(folder, "level_*")))
    levels = []
    for role in roles:
        try:
            wavs = sample_wavs(folder, role)
        except StackError as e:
            raise ListeningError(str(e)) from None
        if wavs:
            through = (renders.get(role) or {}).get("through")
            label = f"{role} codes rendered" + (f" through {', '.join(through)}" if through else "")
            seed = (renders.get(role) or {}).get("seed")
            levels.append((role, label + (f" (seed {seed})" if seed is not None else ""), wavs))
    paper_rf = info.get("paper_receptive_field_ms", spec.receptive_field_ms if spec else None)
    return {"folder": os.path.abspath(folder), "row": row, "info": info, "streams": streams, "levels": levels,
            "description": info.get("description") or (spec.description if spec else ""),
            "n_levels": spec.n_levels if spec else None,
            "rf_ms": _receptive_field_ms(info, row), "paper_rf_ms": paper_rf}


def _labels(stacks: list) -> list:
    """A label per stack: its row, with the folder's name where two folders hold the same row."""
    counts = {}
    for s in stacks:
        counts[s["row"]] = counts.get(s["row"], 0) + 1
    return [s["row"] if counts[s["row"]] == 1 else f"{s['row']} ({os.path.basename(s['folder'])})" for s in stacks]


# --- page parts --------------------------------------------------------------------------------------

def _overview(stacks: list, labels: list) -> Raw:
    body = []
    for s, label in zip(stacks, labels):
        info = s["info"]
        body.append([label, s["description"] or "-", " > ".join(info.get("levels_top_down", [])) or None,
                     s["rf_ms"], s["paper_rf_ms"], len(s["streams"]), info.get("seconds_per_stream"),
                     info.get("audio_seconds_per_wall_second")])
    return pages.table(["#", "model", "levels (top-down)", "RF ours (ms)", "RF paper (ms)", "streams",
                        "seconds per stream", "audio s per wall s"], body,
                       caption="Stacks (receptive field of the prior in audio time, 16 kHz)")


def _facts(s: dict, page_dir: str) -> Raw:
    info = s["info"]
    facts = [("folder", pages.relative(s["folder"], page_dir)), ("model", s["description"] or "-"),
             ("receptive field", f"ours {s['rf_ms']:g} ms, paper {s['paper_rf_ms']} ms" if s["rf_ms"] is not None
              else f"ours unknown (samples.json does not say), paper {s['paper_rf_ms']} ms")]
    for key, label in (("experiments", "level experiments"), ("seeds", "seeds"), ("temperatures", "temperatures"),
                       ("steps", "steps per level")):
        if info.get(key):
            facts.append((label, ", ".join(f"{k}: {v}" for k, v in info[key].items())))
    if info.get("wall_seconds_total") is not None:
        facts.append(("sampling wall time", f"{info['wall_seconds_total']} s "
                                            f"({info.get('audio_seconds_per_wall_second', 0):.4g} s of audio per s)"))
    if not info:
        facts.append(("samples.json", "missing: the folder's wavs only"))
    return pages.table(["", "value"], [[k, v] for k, v in facts], first_column_header=True)


def _stack_section(s: dict, label: str, page_dir: str) -> list:
    header = ["stream", "samples (audio/, all levels top-down)"] + [lab for _, lab, _ in s["levels"]]
    body = []
    for i, wav in enumerate(s["streams"]):
        cells = [os.path.splitext(os.path.basename(wav))[0], pages.audio_cell(wav, page_dir)]
        for _, _, wavs in s["levels"]:
            cells.append(pages.audio_cell(wavs[i], page_dir) if i < len(wavs) else None)
        body.append(cells)
    title = f"Stack {label}" + (f": {s['description']}" if s["description"] else "")
    return [pages.heading(title), _facts(s, page_dir), pages.table(header, body)]


def _blind_item(item_id: str) -> str:
    fields = []
    for m in ratings.MEASURES:
        radios = "".join(f"<label><input type='radio' name='{m}-{item_id}' value='{v}'>{v}</label>"
                         for v in range(ratings.SCALE[0], ratings.SCALE[1] + 1))
        fields.append(f"<fieldset><legend>{m}</legend>{radios}</fieldset>")
    return (f"<div class='item' data-item='{item_id}'><span class='num'></span>"
            f"<audio controls preload='metadata' src='{item_id}.wav'></audio>{''.join(fields)}</div>")


def _blind_section(item_ids: list) -> Raw:
    questions = "".join(f"<li>{esc(q)}</li>" for q in QUESTIONS.values())
    return Raw(
        "<section id='blind'>" + str(pages.heading("Blind rating")) +
        f"<p>Listen to each of the {len(item_ids)} excerpts below (in any order, as often as you like) and rate "
        "each from 1 to 5 on:</p>" + f"<ul>{questions}</ul>" +
        "<p><label>Your name: <input id='rater' type='text' size='24' autocomplete='name'></label> "
        "<span id='rating-status'></span></p>"
        "<div id='blind-items' class='items'>" + "".join(_blind_item(i) for i in item_ids) + "</div>"
        "<p><button id='export' type='button'>export ratings</button> (downloads a JSON file; the same text "
        "appears below)</p><textarea id='ratings-json' readonly></textarea></section>")


def _script(page_id: str) -> Raw:
    code = SCRIPT % {"measures": json.dumps(list(ratings.MEASURES)), "page": json.dumps(page_id),
                     "format": json.dumps(ratings.FORMAT)}
    return Raw(f"<script>{code}</script>")


# --- the page ----------------------------------------------------------------------------------------

def _blind_copy(wav: str, dst: str, max_seconds: Optional[float]) -> None:
    """The wav re-encoded as 16-bit mono (first channel) at its own rate, cut to `max_seconds`: no
    metadata chunk, bit depth or channel count tells a real excerpt from a sample."""
    from tf_ada.audio import read_wav, save_wav
    samples, rate = read_wav(wav)
    n = len(samples) if max_seconds is None else min(len(samples), int(round(max_seconds * rate)))
    save_wav(dst, samples[:n, 0], rate)


def _new_ids(n: int, rng: random.Random) -> list:
    ids: list = []
    while len(ids) < n:
        token = f"x{rng.getrandbits(28):07x}"
        if token not in ids:
            ids.append(token)
    return ids


def page_identity(seed: Optional[int], hashes: list, blind_seconds: Optional[float]) -> tuple:
    """(page id, rng of the blind ids and order). With a seed both derive from it, the sources'
    contents (`hashes`: [[label, kind, index, sha256]] of the blind items) and `blind_seconds`: the
    same inputs give the same page, changed audio a new page id. Without a seed: fresh randomness."""
    if seed is None:
        rng = random.Random()
        return f"{rng.getrandbits(48):012x}", rng
    digest = hashlib.sha256(json.dumps({"seed": int(seed), "blind_seconds": blind_seconds, "sources": hashes},
                                       sort_keys=True).encode()).hexdigest()
    return digest[:12], random.Random(int(digest, 16))


def _write_blind_page(path: str, title: str, item_ids: list, page_id: str) -> str:
    """The blind page: the items, the rating form and the script; no provenance block (the command
    line names the sample folders), no link to the named page."""
    from tf_ada import fileio
    doc = ["<!doctype html>", "<html lang='en'><head><meta charset='utf-8'>",
           "<meta name='viewport' content='width=device-width, initial-scale=1'>",
           f"<title>{esc(title)}</title><style>{pages.STYLE}{STYLE}</style></head><body>", f"<h1>{esc(title)}</h1>",
           str(_blind_section(item_ids)), str(_script(page_id)), "</body></html>"]
    fileio.atomic_write_text(path, "\n".join(doc) + "\n")
    return path


def write_listening_page(out_dir: str, stacks: list, real_wavs: list, title: str = "Table 3: listening page",
                         seed: Optional[int] = None, blind_seconds: Optional[float] = None,
                         prov: Optional[dict] = None) -> str:
    """Writes out_dir/index.html (the named page), out_dir/blind/ (the blind page and its wavs, to hand
    to raters), out_dir/key.json and the named page's media.

    Args:
      out_dir: the page's folder (created); media outside it are copied in (assets/).
      stacks: sample folders written by `tf_ada.stacks.sample_stack` (one per stack, in display order).
      real_wavs: held-out real excerpts (wav paths), shown after the stacks and mixed into the blind items.
      title: the pages' title (the blind page's too: do not name a stack in it).
      seed: with the sources' contents, seeds the page id, the blind ids and the order they are
        written in (`page_identity`; default: fresh randomness).
      blind_seconds: cut every blind item to its first `blind_seconds` (default: whole files). A
        duration that differs between real excerpts and samples tells them apart: give excerpts of
        the samples' length, or set this. Blind copies are re-encoded as 16-bit mono either way.
      prov: `pages.provenance()`'s dict for the named page (default: made here).

    Returns:
      The path of out_dir/index.html. key.json maps every blind item id to its stack (the row, or
      "real" for an excerpt), with the sha256 of every source file; it is what
      `tf_ada.ratings.summarize` reads.
    """
    from tf_ada import fileio
    if blind_seconds is not None and not blind_seconds > 0:
        raise ListeningError(f"blind_seconds must be > 0, got {blind_seconds}")
    if not stacks and not real_wavs:
        raise ListeningError("nothing to listen to: give sample folders and/or real excerpts")
    for wav in real_wavs:
        if not os.path.isfile(wav):
            raise FileNotFoundError(f"{wav}: real excerpt does not exist")
    folders = [read_sample_folder(f) for f in stacks]
    labels = _labels(folders)
    os.makedirs(out_dir, exist_ok=True)
    shown = [w for s in folders for w in s["streams"] + [w for _, _, ws in s["levels"] for w in ws]] + list(real_wavs)
    sha = {os.path.abspath(w): fileio.sha256_file(w) for w in shown}

    # blind items: the stacks' samples (audio/) and the real excerpts, under opaque ids
    sources = [(label, "sample", wav, i) for s, label in zip(folders, labels) for i, wav in enumerate(s["streams"])]
    sources += [(ratings.REAL, "real", wav, i) for i, wav in enumerate(real_wavs)]
    page_id, rng = page_identity(seed, [[label, kind, i, sha[os.path.abspath(wav)]] for label, kind, wav, i in sources],
                                 blind_seconds)
    rng.shuffle(sources)
    ids = _new_ids(len(sources), rng)
    blind_dir = os.path.join(out_dir, BLIND_DIR)
    os.makedirs(blind_dir, exist_ok=True)
    for old in glob.glob(os.path.join(blind_dir, "*")):  # a rebuild may draw new ids; the folder holds only its own
        if os.path.isfile(old):
            os.remove(old)
    items = {}
    for item_id, (label, kind, wav, i) in zip(ids, sources):
        _blind_copy(wav, os.path.join(blind_dir, f"{item_id}.wav"), blind_seconds)
        items[item_id] = {"stack": label, "kind": kind, "source": os.path.abspath(wav), "index": i,
                          "sha256": sha[os.path.abspath(wav)]}
    _write_blind_page(os.path.join(blind_dir, "index.html"), f"{title}: blind rating", sorted(ids), page_id)
    key = {"format": ratings.KEY_FORMAT, "page": page_id, "title": title,
           "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "seed": seed, "blind_seconds": blind_seconds, "blind_page": f"{BLIND_DIR}/index.html",
           "items": dict(sorted(items.items())), "sources": dict(sorted(sha.items())),
           "stacks": {**{label: {"row": s["row"], "description": s["description"], "folder": s["folder"]}
                         for s, label in zip(folders, labels)},
                      **({ratings.REAL: {"description": "real held-out excerpts",
                                         "files": [os.path.abspath(w) for w in real_wavs]}} if real_wavs else {})}}
    fileio.atomic_write_text(os.path.join(out_dir, KEY_FILE), json.dumps(key, indent=1) + "\n")

    named = [pages.paragraph(f"Samples of {len(folders)} stack(s) drawn top-down (tf_ada.stacks.sample_stack) and "
                             f"{len(real_wavs)} real held-out excerpt(s), with log-magnitude spectrograms. Each code "
                             "level is also rendered through the levels below, so that what the codes fix can be heard "
                             "apart from what the lower decoders' sampling adds."),
             Raw(f"<p class='modes'>Blind rating (sec. 4.4): <a href='{BLIND_DIR}/index.html'>{BLIND_DIR}/index.html"
                 f"</a>. Hand raters the {BLIND_DIR}/ folder alone: it holds that page and its wavs, with no "
                 "names; this page, its assets/ and key.json (the id-to-stack key) stay with you.</p>")]
    if folders:
        named.append(_overview(folders, labels))
    for s, label in zip(folders, labels):
        named += _stack_section(s, label, out_dir)
    if real_wavs:
        named += [pages.heading("Real held-out excerpts"),
                  pages.table(["excerpt", "audio"], [[os.path.basename(w), pages.audio_cell(w, out_dir)]
                                                     for w in real_wavs])]
    parts = [Raw(f"<style>{STYLE}</style>"), Raw("<section id='named'>"), *named, Raw("</section>")]
    shown = ", ".join(pages.relative(s["folder"], out_dir) for s in folders)
    prov = prov if prov is not None else pages.provenance(extra={"samples": shown, "blind key": KEY_FILE})
    return pages.write_page(os.path.join(out_dir, "index.html"), title, parts, prov)


def main(argv: Optional[list] = None, prog: Optional[str] = None) -> int:
    parser = argparse.ArgumentParser(prog=prog or "python -m reproduce.listening",
                                     description="Table 3's listening page: every stack's samples, real excerpts, "
                                                 "and a blind rating page (OUT/blind/index.html, a folder to hand "
                                                 "raters)")
    parser.add_argument("--samples", nargs="+", default=[], metavar="DIR",
                        help="sample folders written by tf-ada sample --stack (tf_ada.stacks.sample_stack)")
    parser.add_argument("--real", nargs="+", default=[], metavar="WAV", help="real held-out excerpts")
    parser.add_argument("--out", required=True, metavar="DIR", help="the page's folder (index.html, key.json)")
    parser.add_argument("--title", default="Table 3: listening page")
    parser.add_argument("--seed", type=int, help="seed of the page id, blind ids and order, with the sources' "
                        "contents (default: random)")
    parser.add_argument("--blind-seconds", type=float, metavar="S",
                        help="cut every blind item to its first S seconds (durations must not tell real from sampled)")
    args = parser.parse_args(argv)
    try:
        page = write_listening_page(args.out, args.samples, args.real, title=args.title, seed=args.seed,
                                    blind_seconds=args.blind_seconds)
    except (ListeningError, FileNotFoundError) as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {page} (blind page for raters: {os.path.join(args.out, BLIND_DIR, 'index.html')}, hand them "
          f"that folder alone; key for tf_ada.ratings: {os.path.join(args.out, KEY_FILE)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

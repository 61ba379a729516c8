"""Table 3's listening page and human-evaluation summary (issue 16 item 4; sec. 4.4, Table 3).

(a) `tf_ada.ratings.summarize` on hand-computed numbers: each rater's mean per stack first, then mean
and standard error across raters (which differs from pooling every rating), and clear errors for bad
files. (b) The pages built from tiny fake `sample_stack` folders: every <audio> source exists, the
blind page (its own folder) names no stack, its ids follow the seed and the audio; opened in
headless Chromium (Debian's `chromium`; skipped without it) every blind item loads, and a scripted
rating round (a probe script appended to a copy of the blind page fills the rater name, clicks the
radio buttons and the export button, and reads the export from the page's textarea) round-trips
through `ratings.summarize` with the page's key.json."""
import html as std_html
import json
import math
import os
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from conftest import _float_wav

from tf_ada import ratings
from tf_ada.ratings import RatingsError
from chromium_dom import dump_dom

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
RATE = 16000


# --- (a) the summary on known numbers -----------------------------------------------------------------

def write_json(path, data) -> str:
    with open(path, "w") as f:
        json.dump(data, f)
    return str(path)


def rating_file(tmp_path, rater, values, page=None) -> str:
    """values: {item: (fidelity, musicality)}."""
    doc = {"format": ratings.FORMAT, "rater": rater,
           "ratings": [{"item": i, "fidelity": f, "musicality": m} for i, (f, m) in values.items()]}
    if page:
        doc["page"] = page
    return write_json(tmp_path / f"ratings_{rater}.json", doc)


@pytest.fixture
def key(tmp_path):
    items = {"a1": "3.4", "a2": "3.4", "a3": "3.4", "b1": "3.6", "r1": "real"}
    return write_json(tmp_path / "key.json", {"format": ratings.KEY_FORMAT, "page": "p1",
                                              "items": {i: {"stack": s} for i, s in items.items()}})


@pytest.fixture
def three_raters(tmp_path, key):
    # 3.4 fidelity: A's mean 5, B's 2, C's 3.5 -> mean 3.5, sd(ddof=1) 1.5, SE 1.5/sqrt(3); pooled: 24/6 = 4.0
    # 3.4 musicality: A 1, B 2 (C rated none) -> mean 1.5, SE 0.5 over 2 raters
    # 3.6: only A rates fidelity (4): SE undefined; musicality nobody
    a = rating_file(tmp_path, "A", {"a1": (5, 1), "a2": (5, None), "a3": (5, None), "b1": (4, None), "r1": (5, 5)})
    b = rating_file(tmp_path, "B", {"a1": (2, 2), "a2": (None, 2), "r1": (4, 4)}, page="p1")
    c = rating_file(tmp_path, "C", {"a1": (3, None), "a2": (4, None), "r1": (3, 3)})
    return [a, b, c]


def test_summary_takes_each_raters_mean_first_then_mean_and_se_across_raters(three_raters, key):
    s = ratings.summarize(three_raters, key)
    assert list(s) == ["3.4", "3.6", "real"]  # Table 3's order, real excerpts last
    mean, se, n = s["3.4"]["fidelity"]
    assert (mean, n) == (pytest.approx(3.5), 3) and se == pytest.approx(1.5 / math.sqrt(3))
    pooled = np.mean([5, 5, 5, 2, 3, 4])
    assert pooled == pytest.approx(4.0) and mean != pytest.approx(pooled)  # rater-mean-first is not pooling
    assert s["3.4"]["musicality"] == (pytest.approx(1.5), pytest.approx(0.5), 2)
    mean, se, n = s["3.6"]["fidelity"]
    assert mean == 4.0 and n == 1 and math.isnan(se)  # one rater: no standard error
    assert math.isnan(s["3.6"]["musicality"][0]) and s["3.6"]["musicality"][2] == 0
    assert s["real"]["fidelity"] == (pytest.approx(4.0), pytest.approx(1 / math.sqrt(3)), 3)


def test_tables_have_table3s_columns_and_say_when_se_is_undefined(three_raters, key, tmp_path):
    s = ratings.summarize(three_raters, key)
    md = ratings.markdown_table(s)
    assert "| # | model | fidelity (mean ± SE) | musicality (mean ± SE) | raters |" in md
    assert "| 3.4 | hop-8 VQ-VAE + large WaveNet | 3.50 ± 0.87 | 1.50 ± 0.50 | 3/2 |" in md
    assert "| 3.6 | VQ-VAE + PBT-VQ-VAE + large WaveNet | 4.00 ± n/a (1 rater) | - | 1/0 |" in md
    assert "standard error is undefined" in md
    path = ratings.write_table(s, str(tmp_path / "t.csv"))
    lines = open(path).read().splitlines()
    assert lines[0].startswith("stack,model,fidelity_mean,fidelity_se,fidelity_raters")
    assert lines[2] == "3.6,VQ-VAE + PBT-VQ-VAE + large WaveNet,4,,1,,,0"


def test_command_line_prints_and_writes_the_table(three_raters, key, tmp_path, capsys):
    out = str(tmp_path / "table3_ratings.md")
    assert ratings.main(["summarize", *three_raters, "--key", key, "--out", out]) == 0
    assert "3.50 ± 0.87" in capsys.readouterr().out and "3.50 ± 0.87" in open(out).read()
    bad = write_json(tmp_path / "bad.json", {"rater": "D", "ratings": [{"item": "zz", "fidelity": 3}]})
    assert ratings.main(["summarize", bad, "--key", key]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "unknown item id 'zz'" in err


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a JSON ratings file"),
    ('["a list"]', "holds a JSON object"),
    ('{"ratings": []}', "no rater name"),
    ('{"rater": "D", "ratings": {"a1": 3}}', "must be a list"),
    ('{"rater": "D", "ratings": [{"item": "a1", "fidelity": 6}]}', "rating 6 is not a whole number from 1 to 5"),
    ('{"rater": "D", "ratings": [{"item": "a1", "musicality": 0}]}', "musicality rating 0"),
    ('{"rater": "D", "ratings": [{"item": "a1", "fidelity": 2.5}]}', "fidelity rating 2.5"),
    ('{"rater": "D", "ratings": [{"item": "a1", "fidelity": "3"}]}', "fidelity rating '3'"),
    ('{"rater": "D", "ratings": [{"item": "a1", "fidelity": true}]}', "fidelity rating True"),
    ('{"rater": "D", "ratings": [{"item": "nope", "fidelity": 3}]}', "unknown item id 'nope'"),
    ('{"rater": "D", "ratings": [{"item": "a1"}, {"item": "a1"}]}', "rated twice"),
    ('{"rater": "D", "page": "p0", "ratings": []}', "page build 'p0'"),
    ('{"format": "other/2", "rater": "D", "ratings": []}', "format 'other/2'"),
], ids=["malformed", "not-an-object", "no-rater", "ratings-not-a-list", "above-5", "below-1", "half",
        "string", "bool", "unknown-item", "item-twice", "other-page-build", "other-format"])
def test_bad_ratings_files_are_refused_naming_the_file(tmp_path, key, content, message):
    path = tmp_path / "rater_D.json"
    path.write_text(content)
    with pytest.raises(RatingsError, match=re.escape(str(path))) as e:
        ratings.summarize([str(path)], key)
    assert message in str(e.value)


def test_bad_keys_and_repeated_raters_are_refused(tmp_path, key, three_raters):
    with pytest.raises(RatingsError, match="already rated in"):
        ratings.summarize([three_raters[0], three_raters[0]], key)
    with pytest.raises(RatingsError, match="does not exist"):
        ratings.summarize(three_raters, str(tmp_path / "missing.json"))
    no_stack = write_json(tmp_path / "k2.json", {"items": {"a1": {}}})
    with pytest.raises(RatingsError, match=re.escape(no_stack) + ".*no \"stack\""):
        ratings.summarize(three_raters, no_stack)
    with pytest.raises(RatingsError, match="no ratings files"):
        ratings.summarize([], key)


# --- (b) the page -------------------------------------------------------------------------------------

def tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def fake_samples(folder, row: str, roles_bottom_up: list, n: int = 2, seconds: float = 0.3) -> str:
    """A folder shaped like `tf_ada.stacks.sample_stack`'s: samples.json, audio/stream_NN.wav and
    level_ROLE/stream_NN.wav for every code level (every role above the bottom one)."""
    from tf_ada.audio import save_wav
    from tf_ada.stacks import PAPER_TABLE3, level_seeds
    os.makedirs(folder)
    seeds = level_seeds(0, roles_bottom_up)
    for i in range(n):
        save_wav(os.path.join(folder, "audio", f"stream_{i:02d}.wav"), tone(seconds, 200 + 100 * i))
    renders = {}
    for k, role in enumerate(roles_bottom_up[1:], start=1):
        for i in range(n):
            save_wav(os.path.join(folder, f"level_{role}", f"stream_{i:02d}.wav"), tone(seconds, 300 + 50 * k + 7 * i))
        renders[role] = {"seed": seeds[role] + 500, "through": list(reversed(roles_bottom_up[:k])),
                         "folder": f"level_{role}"}
    summary = {"stack": row, "streams": n, "seconds_requested": seconds, "seconds_per_stream": seconds,
               "base_seed": 0, "seeds": seeds, "temperatures": {r: 1.0 for r in roles_bottom_up},
               "levels_top_down": list(reversed(roles_bottom_up)), "steps": {r: 100 for r in roles_bottom_up},
               "hops": {r: 8 for r in roles_bottom_up if r != "prior"}, "run_folders": {},
               "experiments": {r: f"fake_{r}_tiny" for r in roles_bottom_up}, "receptive_field_ms": 12.5,
               "paper_receptive_field_ms": PAPER_TABLE3[row][2], "wall_seconds": {}, "wall_seconds_total": 1.5,
               "audio_seconds_per_wall_second": 0.4, "level_renders": renders, "level_renders_wall_seconds": 0.1,
               "files": {"audio": "audio/stream_NN.wav"}}
    with open(os.path.join(folder, "samples.json"), "w") as f:
        json.dump(summary, f)
    return str(folder)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """Samples of 3.4 (first + prior) and 3.6 (first + second + prior), 2 streams each, and 2 real
    excerpts, built with the command line; returns (page, out folder, sample folders, real wavs)."""
    from reproduce import listening
    from tf_ada.audio import save_wav
    root = tmp_path_factory.mktemp("listening")
    folders = [fake_samples(str(root / "samples_3.4"), "3.4", ["first", "prior"]),
               fake_samples(str(root / "samples_3.6"), "3.6", ["first", "second", "prior"])]
    real = []
    for i in range(2):
        real.append(str(root / f"heldout_excerpt{i}.wav"))
        save_wav(real[-1], tone(0.3, 440 + 20 * i))
    out = str(root / "page")
    assert listening.main(["--samples", *folders, "--real", *real, "--out", out, "--seed", "3"]) == 0
    return os.path.join(out, "index.html"), out, folders, real


class Sources(HTMLParser):
    """Every src of <img> and <audio>."""

    def __init__(self):
        super().__init__()
        self.audio, self.images = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "audio":
            self.audio.append(dict(attrs).get("src"))
        elif tag == "img":
            self.images.append(dict(attrs).get("src"))


def test_page_has_a_player_and_spectrogram_for_every_level_and_every_source_exists(page):
    path, out, folders, real = page
    text = open(path).read()
    parser = Sources()
    parser.feed(text)
    # named: 3.4: 2 streams x (samples + prior level); 3.6: 2 x (samples + prior + second); 2 real
    assert len(parser.audio) == 4 + 6 + 2 and len(parser.images) == 4 + 6 + 2
    for src in parser.audio + parser.images:
        assert src and not os.path.isabs(src) and os.path.exists(os.path.join(out, src)), src
    assert "Stack 3.6: VQ-VAE + PBT-VQ-VAE + large WaveNet" in text and "ours 12.5 ms, paper 24576 ms" in text
    assert "prior codes rendered through second, first" in text
    assert "http://" not in text and "https://" not in text  # nothing from the network
    assert str(os.path.dirname(out)) not in text  # folders shown relative to the page, not where it was built
    key = json.load(open(os.path.join(out, "key.json")))
    assert sorted(v["stack"] for v in key["items"].values()) == ["3.4", "3.4", "3.6", "3.6", "real", "real"]
    assert "blind/index.html" in text
    # the blind page: its own folder, its items' wavs and nothing else (no names, no key, no assets)
    blind_dir = os.path.join(out, "blind")
    assert sorted(os.listdir(blind_dir)) == sorted(["index.html"] + [f"{i}.wav" for i in key["items"]])
    blind = open(os.path.join(blind_dir, "index.html")).read()
    parser = Sources()
    parser.feed(blind)
    assert sorted(parser.audio) == sorted(f"{i}.wav" for i in key["items"]) and parser.images == []
    assert key["page"] in blind and "assets/" not in blind and "<h2>Provenance" not in blind
    names = ("3.4", "3.6", "WaveNet", "samples_3", "stream_", "heldout", "key.json")
    assert [name for name in names if name in blind] == []
    for item in key["items"]:  # the named page does not name the blind ids either
        assert item not in text
    # key.json: the sha256 of every file shown
    assert len(key["sources"]) == 4 + 6 + 2
    for item in key["items"].values():
        assert key["sources"][item["source"]] == item["sha256"]


def test_old_wavs_beside_the_listed_ones_are_not_shown(tmp_path):
    """A folder sampled again with fewer streams (or an old copy) holds wavs samples.json does not
    list: the page shows only the listed ones."""
    from reproduce import listening
    from tf_ada.audio import save_wav
    folder = fake_samples(str(tmp_path / "s"), "3.4", ["first", "prior"], n=2)
    save_wav(os.path.join(folder, "audio", "stream_02.wav"), tone(0.3, 900))  # stale: samples.json says 2 streams
    save_wav(os.path.join(folder, "level_prior", "stream_02.wav"), tone(0.3, 900))
    save_wav(os.path.join(folder, "level_second", "stream_00.wav"), tone(0.3, 900))  # a level this stack lacks
    s = listening.read_sample_folder(folder)
    assert [os.path.basename(w) for w in s["streams"]] == ["stream_00.wav", "stream_01.wav"]
    assert [(role, [os.path.basename(w) for w in wavs]) for role, _, wavs in s["levels"]] == [
        ("prior", ["stream_00.wav", "stream_01.wav"])]
    out = str(tmp_path / "page")
    listening.write_listening_page(out, [folder], [], seed=0)
    key = json.load(open(os.path.join(out, "key.json")))
    assert sorted(os.path.basename(v["source"]) for v in key["items"].values()) == ["stream_00.wav", "stream_01.wav"]
    assert "stream_02" not in open(os.path.join(out, "index.html")).read()


def test_page_id_follows_the_seed_and_the_sources_contents(tmp_path):
    """Same seed and same audio: the same page (ids and page id); changed audio under the same
    names: a new page id and new ids, and ratings of the old build are refused by the new key."""
    from reproduce import listening
    from tf_ada.audio import save_wav
    folder = fake_samples(str(tmp_path / "s"), "3.4", ["first", "prior"], n=2)
    real = str(tmp_path / "real.wav")
    save_wav(real, tone(0.3, 500))
    out = str(tmp_path / "page")

    def build(**kw):
        listening.write_listening_page(out, [folder], [real], **kw)
        return json.load(open(os.path.join(out, "key.json")))

    first = build(seed=5)
    again = build(seed=5)
    assert (again["page"], sorted(again["items"])) == (first["page"], sorted(first["items"]))
    assert build(seed=6)["page"] != first["page"]
    assert build(seed=5, blind_seconds=0.1)["page"] != first["page"]
    export = rating_file(tmp_path, "A", {i: (3, 3) for i in first["items"]}, page=first["page"])
    save_wav(os.path.join(folder, "audio", "stream_01.wav"), tone(0.3, 777))  # resampled: same path, new audio
    rebuilt = build(seed=5)
    assert rebuilt["page"] != first["page"] and set(rebuilt["items"]).isdisjoint(first["items"])
    assert sorted(os.listdir(os.path.join(out, "blind"))) == sorted(["index.html"] + [f"{i}.wav" for i in
                                                                                      rebuilt["items"]])
    with pytest.raises(RatingsError, match="page was rebuilt"):
        ratings.summarize([export], os.path.join(out, "key.json"))


def test_missing_inputs_are_reported(tmp_path, capsys):
    from reproduce import listening
    assert listening.main(["--samples", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "nope: sample folder does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(listening.ListeningError, match="no audio/"):
        listening.write_listening_page(str(tmp_path / "o"), [str(tmp_path / "empty")], [])


def test_sample_folders_without_a_recorded_rf_or_samples_json_fall_back(tmp_path):
    from reproduce import listening
    from tf_ada import stacks
    folder = fake_samples(str(tmp_path / "3.4"), "3.4", ["first", "prior"], n=1)
    info = json.load(open(os.path.join(folder, "samples.json")))
    del info["receptive_field_ms"], info["paper_receptive_field_ms"]
    write_json(os.path.join(folder, "samples.json"), info)
    s = listening.read_sample_folder(folder)  # the experiments' names say the scale: computed from the configs
    assert s["rf_ms"] == pytest.approx(stacks.stack("3.4", "tiny").receptive_field_ms, abs=0.01)
    assert s["paper_rf_ms"] == 3072 and s["description"] == "hop-8 VQ-VAE + large WaveNet"
    os.remove(os.path.join(folder, "samples.json"))  # the wavs only: the folder's name, levels found on disk
    s = listening.read_sample_folder(folder)
    assert (s["row"], s["rf_ms"], s["info"]) == ("3.4", None, {})
    assert [(role, len(wavs)) for role, _, wavs in s["levels"]] == [("prior", 1)]
    page = listening.write_listening_page(str(tmp_path / "page"), [folder], [])
    assert "ours unknown (samples.json does not say), paper 3072 ms" in open(page).read()


def test_blind_items_are_cut_to_blind_seconds_and_keep_no_header_of_their_own(tmp_path):
    from reproduce import listening
    from tf_ada.audio import read_wav
    folder = fake_samples(str(tmp_path / "s"), "3.1", ["prior"], n=1, seconds=0.3)
    real = str(tmp_path / "r.wav")
    with open(real, "wb") as f:  # a stereo float wav with a LIST chunk naming it
        data = bytearray(_float_wav(np.stack([tone(0.5, 300)] * 2, 1), RATE))
        chunk = b"LIST" + (12).to_bytes(4, "little") + b"INFOreal_rec"
        data += chunk
        data[4:8] = (len(data) - 8).to_bytes(4, "little")
        f.write(bytes(data))
    out = str(tmp_path / "page")
    listening.write_listening_page(out, [folder], [real], blind_seconds=0.1, seed=1)
    blind = sorted(f for f in os.listdir(os.path.join(out, "blind")) if f.endswith(".wav"))
    assert len(blind) == 2
    for name in blind:
        path = os.path.join(out, "blind", name)
        samples, rate = read_wav(path)
        assert samples.shape == (1600, 1) and rate == RATE
        assert b"real_rec" not in open(path, "rb").read() and os.path.getsize(path) == 44 + 2 * 1600
    with pytest.raises(listening.ListeningError, match="blind_seconds"):
        listening.write_listening_page(out, [folder], [], blind_seconds=0)


# appended to a copy of the blind page: waits for every <audio> to load, reports what a
# rater sees, then plays a rating round through the page's own controls (name field, radio buttons,
# export button) and reports the export from the page's textarea, in a <pre> that --dump-dom prints
PROBE = """<script>
window.addEventListener('load', function () {
  var PLAN = %s;
  var media = Array.prototype.slice.call(document.querySelectorAll('audio'));
  Promise.all(media.map(function (a) {
    return new Promise(function (done) {
      if (a.readyState >= 1 || a.error) { done(); return; }
      a.addEventListener('loadedmetadata', done); a.addEventListener('error', done);
    });
  })).then(function () {
    var blind = document.getElementById('blind');
    var out = {
      audio: media.map(function (a) {
        return {src: a.getAttribute('src'), ok: a.readyState >= 1 && !a.error && a.duration > 0}; }),
      images: Array.prototype.map.call(document.images, function (i) {
        return {src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}; }),
      has_named: document.getElementById('named') !== null,
      blind_display: getComputedStyle(blind).display,
      blind_html: blind.innerHTML, visible_text: document.body.innerText,
      blind_items: Array.prototype.map.call(blind.querySelectorAll('.item'), function (el) {
        return el.dataset.item; })};
    document.getElementById('export').click();  // no name yet: refused
    out.without_name = document.getElementById('ratings-json').value;
    document.getElementById('rater').value = PLAN.rater;
    Object.keys(PLAN.ratings).forEach(function (item) {
      ['fidelity', 'musicality'].forEach(function (m, k) {
        var v = PLAN.ratings[item][k];
        if (v !== null) { document.querySelector('input[name="' + m + '-' + item + '"][value="' + v + '"]').click(); }
      });
    });
    document.getElementById('export').click();
    out.exported = document.getElementById('ratings-json').value;
    out.status = document.getElementById('rating-status').textContent;
    var pre = document.createElement('pre'); pre.id = 'tf-ada-probe'; pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  });
});
</script>
"""


def run_probe(page: str, plan: dict) -> tuple[dict, str]:
    """Opens a copy of `page` with PROBE in headless Chromium; returns (probe, dumped DOM)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    probe = os.path.join(os.path.dirname(page), "_probe_" + os.path.basename(page))
    with open(page) as f, open(probe, "w") as g:
        g.write(f.read().replace("</body>", PROBE % json.dumps(plan) + "</body>"))
    try:
        stdout, stderr = dump_dom(CHROMIUM, "file://" + os.path.abspath(probe), "</html>")
    finally:
        os.remove(probe)
    found = re.search(r'<pre id="tf-ada-probe">(.*?)</pre>', stdout, re.S)
    assert found, f"{page} did not finish loading in chromium: {stderr[-2000:]}"
    return json.loads(std_html.unescape(found.group(1))), stdout


def test_blind_rating_round_in_chromium_hides_names_and_round_trips_through_summarize(page, tmp_path):
    path, out, folders, real = page
    key_path = os.path.join(out, "key.json")
    key = json.load(open(key_path))
    # a rater's plan: 3.4 -> fidelity 4, musicality 2; 3.6 -> fidelity 3 then 4 (mean 3.5), musicality 5;
    # real -> 5 and 5, one real excerpt's musicality left unrated
    plan, stream_of = {}, {}
    for item, entry in sorted(key["items"].items()):
        k = stream_of[entry["stack"]] = stream_of.get(entry["stack"], -1) + 1
        plan[item] = {"3.4": [4, 2], "3.6": [3 + k, 5], "real": [5, 5 if k == 0 else None]}[entry["stack"]]
    blind_page = os.path.join(out, "blind", "index.html")
    probe, dom = run_probe(blind_page, {"rater": "autotest", "ratings": plan})

    # the blind page (its own folder) loads every item's audio; it has no named section, no images
    assert len(probe["audio"]) == 6 and [a["src"] for a in probe["audio"] if not a["ok"]] == []
    assert probe["images"] == []
    assert not probe["has_named"] and probe["blind_display"] != "none"
    assert sorted(probe["blind_items"]) == sorted(key["items"])
    hidden = ["3.4", "3.6", "VQ-VAE", "WaveNet", "samples_3", "stream_", "level_", "heldout", "excerpt0", "prior",
              "assets/", key_path]
    for text in (probe["blind_html"], probe["visible_text"]):
        assert [name for name in hidden if name in text] == []
    assert probe["without_name"] == ""
    # the export: in the textarea and in the DOM (what a saved page or --dump-dom holds)
    exported = json.loads(probe["exported"])
    assert exported["rater"] == "autotest" and exported["page"] == key["page"]
    assert {r["item"]: [r["fidelity"], r["musicality"]] for r in exported["ratings"]} == plan
    assert "exported 6 items (1 not fully rated)" in probe["status"]
    textarea = re.search(r'<textarea id="ratings-json" readonly="">(.*?)</textarea>', dom, re.S)
    assert textarea and json.loads(std_html.unescape(textarea.group(1))) == exported

    # ... and through the summary, with a second hand-written rater
    first = write_json(tmp_path / "ratings_autotest.json", exported)
    other = rating_file(tmp_path, "B", {i: (1, 1) for i in key["items"]}, page=key["page"])
    s = ratings.summarize([first, other], key_path)
    assert s["3.4"]["fidelity"] == (pytest.approx(2.5), pytest.approx(1.5), 2)  # (4 + 1) / 2; sd 2.12 / sqrt 2
    assert s["3.6"]["fidelity"][0] == pytest.approx((3.5 + 1) / 2)
    assert s["3.6"]["musicality"][0] == pytest.approx(3.0)
    assert s["real"]["musicality"] == (pytest.approx(3.0), pytest.approx(2.0), 2)  # autotest's one rating: 5

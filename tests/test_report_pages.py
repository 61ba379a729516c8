"""Report pages (issue 14): the demo, Table 1 and Figure 2 pages are built from small run folders
written here (no training), then opened in headless Chromium: each page loads, every image
decodes and every audio source loads its metadata. Chromium is Debian's `chromium` package,
installed by `make test` (system-deps); without it these tests fail rather than skip."""
import html as std_html
import json
import os
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
import tensorflow as tf

from reproduce import demo, figure2, table1
from reproduce import pages
from tf_ada import configs, evaluation, hparams
from tf_ada.audio import save_wav
from chromium_dom import dump_dom

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
RATE = 16000

# appended to a copy of a page: after load, waits for every <audio> to load its metadata (or
# fail), then writes what it found into a <pre> that --dump-dom prints
PROBE = """<script>
window.addEventListener('load', function () {
  var media = Array.prototype.slice.call(document.querySelectorAll('audio'));
  Promise.all(media.map(function (a) {
    return new Promise(function (done) {
      if (a.readyState >= 1 || a.error) { done(); return; }
      a.addEventListener('loadedmetadata', done); a.addEventListener('error', done);
    });
  })).then(function () {
    var out = {
      images: Array.prototype.map.call(document.images, function (i) {
        return {src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}; }),
      audio: media.map(function (a) {
        return {src: a.getAttribute('src'), ok: a.readyState >= 1 && !a.error && a.duration > 0}; }),
      tables: document.querySelectorAll('table').length};
    var pre = document.createElement('pre'); pre.id = 'tf-ada-probe'; pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  });
});
</script>
"""


def chromium() -> str:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `make test` installs it (make system-deps, as root), or run "
                    "`sudo apt-get install -y chromium`")
    return CHROMIUM


def open_in_chromium(page: str) -> dict:
    """Loads `page` (a copy with PROBE appended, beside it) in headless Chromium; returns the probe's
    {images: [{src, ok}], audio: [{src, ok}], tables: n}. Fails when the page never finishes loading."""
    probe = os.path.join(os.path.dirname(page), "_probe_" + os.path.basename(page))
    with open(page) as f, open(probe, "w") as g:
        g.write(f.read().replace("</body>", PROBE + "</body>"))
    try:
        stdout, stderr = dump_dom(chromium(), "file://" + os.path.abspath(probe), "</html>")
    finally:
        os.remove(probe)
    found = re.search(r'<pre id="tf-ada-probe">(.*?)</pre>', stdout, re.S)
    assert found, f"{page} did not finish loading in chromium: {stderr[-2000:]}"
    return json.loads(std_html.unescape(found.group(1)))


class Sources(HTMLParser):
    """Every src of <img>, <audio> and <source>, and the text of every <pre>."""

    def __init__(self):
        super().__init__()
        self.srcs, self.pres, self._in_pre = [], [], False

    def handle_starttag(self, tag, attrs):
        if tag in ("img", "audio", "source"):
            self.srcs.append(dict(attrs).get("src"))
        self._in_pre = self._in_pre or tag == "pre"

    def handle_endtag(self, tag):
        self._in_pre = self._in_pre and tag != "pre"

    def handle_data(self, data):
        if self._in_pre:
            self.pres.append(data)


def check_page(page: str, n_images: int, n_audio: int) -> dict:
    """Every src exists on disk, no markdown table in <pre>, and in Chromium the page loads, every
    image decodes and every audio source loads; returns the probe."""
    text = open(page).read()
    parser = Sources()
    parser.feed(text)
    for src in parser.srcs:
        assert src and os.path.exists(os.path.join(os.path.dirname(page), src)), f"{page}: missing {src}"
    assert not any("|---" in p for p in parser.pres), "a markdown table in <pre>"
    assert "Provenance" in text and "commit" in text and "tensorflow" in text
    probe = open_in_chromium(page)
    assert len(probe["images"]) >= n_images and len(probe["audio"]) >= n_audio
    assert [i["src"] for i in probe["images"] if not i["ok"]] == []
    assert [a["src"] for a in probe["audio"] if not a["ok"]] == []
    assert probe["tables"] >= 1
    return probe


# --- run folders without training -------------------------------------------------------------------

def chirp(seconds: float, seed: int) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * (220 + 200 * seed) * t * (1 + t))).astype(np.float32)


def fake_row(out: str, row: str, n_codes_used: int = 3) -> dict:
    """A finished Table 1 row at tiny scale: experiment.json, TensorBoard train/* and eval/* scalars,
    eval_history.jsonl, eval_sequences.npz (codes: only `n_codes_used` of K in use, a collapse),
    two reconstructions, and its row.json dict."""
    exp = configs.table1_row(row, "tiny")
    run = os.path.join(out, exp.name)
    os.makedirs(run)
    with open(os.path.join(run, "experiment.json"), "w") as f:
        json.dump(exp.to_dict(), f)
    has_codes = row != "1.1"
    writer = tf.summary.create_file_writer(os.path.join(run, "tensorboard"))
    with writer.as_default():
        for step in range(10, 101, 10):
            tf.summary.scalar("train/loss", 5.0 / step ** 0.3, step=step)
            tf.summary.scalar("train/nll", 4.5 / step ** 0.3, step=step)
            if has_codes:
                tf.summary.scalar("train/perplexity", 30.0 - step / 5, step=step)
    writer.close()
    history = [{"step": s, "train_nll_paper": 3.0 - s / 100, "eval_nll_paper": 3.1 - s / 100,
                "eval_nll_full": 3.05 - s / 100, **({"eval_perplexity_paper": 20.0 - s / 10} if has_codes else {})}
               for s in (50, 100)]
    with open(os.path.join(run, "eval_history.jsonl"), "w") as f:
        f.writelines(json.dumps(h) + "\n" for h in history)
    rng = np.random.default_rng(int(row[-1]))
    n, k = 6, exp.model.n_codes if has_codes else 0
    counts = np.zeros((n, k), np.int64)
    if has_codes:
        counts[:, :n_codes_used] = rng.integers(1, 50, (n, n_codes_used))
    results = {}
    for protocol in ("paper", "full"):
        results[("eval", protocol)] = evaluation.Results(
            np.array([f"rec{i % 3}" for i in range(n)]), np.array([f"work{i % 3}" for i in range(n)]),
            np.arange(n, dtype=np.int64) * RATE, rng.uniform(2, 3, n) * RATE, np.full(n, RATE, np.int64),
            counts if has_codes else None)
    evaluation.save_results(os.path.join(run, evaluation.SEQUENCES_FILE), results, {"step": 100})
    recons = []
    if has_codes:
        for i in range(2):
            orig, recon = (os.path.join(run, "reconstructions", f"excerpt{i}_{w}.wav")
                           for w in ("original", "reconstruction"))
            save_wav(orig, chirp(0.5, i))
            save_wav(recon, 0.1 * rng.standard_normal(RATE // 2).astype(np.float32))
            recons.append({"original": orig, "reconstruction": recon})
    res = {"row": row, "name": exp.name, "run_dir": run, "steps": 100, "minutes": 0.1, "eval_minutes": 0.01,
           "reconstructions": recons, "corpus_hash": "c" * 64, "eval_sequences_paper": n, "eval_works": 3}
    for protocol in ("paper", "full"):
        s = evaluation.summarize(results[("eval", protocol)], protocol)
        res[f"eval_nll_{protocol}"], res[f"eval_nll_{protocol}_se"] = s["nll"], s["nll_se"]
        if has_codes:
            res[f"eval_perplexity_{protocol}"] = s["perplexity"]
            res[f"eval_perplexity_{protocol}_se"] = s["perplexity_se"]
            res[f"eval_codes_in_use_{protocol}"] = s["codes_in_use"]
    res["train_nll_paper"], res["train_nll_paper_se"] = 2.9, 0.01
    return res


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("table1-tiny"))
    return out, {row: fake_row(out, row) for row in ("1.1", "1.2", "1.3")}


# --- the pages ---------------------------------------------------------------------------------------

def test_table1_page_loads_with_tables_curves_code_usage_and_players(rows):
    out, results = rows
    table1.write_report(results, "tiny", out, "runs/corpus-tiny/data")
    page = os.path.join(out, "table1.html")
    text = open(page).read()
    assert "<th>paper eval NLL</th>" in text and "<td>VQ-VAE</td>" in text
    assert "holds" in text or "inconclusive" in text or "does not hold" in text
    assert "3/256 codes in use" not in text  # in the PNG's title, not the text
    # 2 ADA rows x 2 excerpts x 2 players, each with its spectrogram; curves for 3 rows, code usage for 2
    probe = check_page(page, n_images=2 * 2 * 2 + 3 + 2, n_audio=2 * 2 * 2)
    assert sum("_codes.png" in i["src"] for i in probe["images"]) == 2
    assert sum("_curves.png" in i["src"] for i in probe["images"]) == 3
    # the run folders inside the page's folder got TensorBoard's hparams session
    assert all(hparams.has_hparams(r["run_dir"]) for r in results.values())


def test_demo_index_loads_with_pretrained_and_table1_sections(rows, tmp_path):
    _, results = rows
    out = str(tmp_path / "demo")
    os.makedirs(os.path.join(out, "audio"))
    excerpts, per = [], []
    for i in range(2):
        save_wav(os.path.join(out, "audio", f"heldout{i}_original.wav"), chirp(0.5, i))
        save_wav(os.path.join(out, "audio", f"heldout{i}_1.2-cpu.wav"), chirp(0.5, i + 1))
        excerpts.append({"recording": f"rec{i}", "work": "w", "start_seconds": float(i),
                         "original": f"audio/heldout{i}_original.wav", "flatness_original": 0.1,
                         "flatness_magnitude_original": 0.4})
        per.append({"reconstruction": f"audio/heldout{i}_1.2-cpu.wav", "flatness": 0.2, "flatness_magnitude": 0.5,
                    "chroma_correlation": 0.7})
    medians = {"flatness_original": 0.1, "flatness_magnitude_original": 0.4, "flatness": 0.2,
               "flatness_magnitude": 0.5, "chroma_correlation": 0.7}
    pre = {"split": "eval", "corpus_hash": "c" * 64, "seconds": 0.5, "seed": 0, "temperature": 1.0,
           "excerpts": excerpts,
           "models": {"1.2-cpu": {"summary": "VQ-VAE", "steps": 6000, "card_corpus_hash": "c" * 64,
                                  "corpus_hash_matches": True, "eval_nll_paper": 2.1, "eval_perplexity_paper": 60.0,
                                  "encode_decode_seconds": 1.0, "excerpts": per, "medians": medians}}}
    page = demo.write_index(out, results, "", pre, data_dir="runs/corpus-tiny/data", scale="tiny")
    text = open(page).read()
    assert "model&#x27;s held-out NLL (1 s)" in text and "2.100" in text and "60.0" in text
    assert "excerpt0_row1.2.wav" in text and "Table 1 at demo scale" in text
    # pretrained: 2 excerpts x 2 players; demo-scale: 2 excerpts x (original + 2 rows); each with a spectrogram;
    # curves for 3 rows and code usage for 2
    check_page(page, n_images=4 + 6 + 3 + 2, n_audio=4 + 6)


def test_figure2_page_embeds_the_figure_and_the_adas_code_usage(rows, tmp_path):
    from analysis.plot_profiles import plot_figure2
    _, results = rows
    out = str(tmp_path / "fig2")
    os.makedirs(out)
    profile = [{"receptive_field": r, "train_nll": 3 - r / 10, "train_nll_se": 0.01, "eval_nll": 3.1 - r / 10,
                "eval_nll_se": 0.02, "steps": 10 * r, "converged": True, "non_increasing": "ok"} for r in (0, 1, 2, 4)]
    png = plot_figure2(profile, profile, os.path.join(out, "figure2.png"), 2)
    judged = [("audio NLL drops quickly", "holds", "0.1 ± 0.01"), ("a transition", "not run", "")]
    page = figure2.write_html(out, "tiny", "runs/corpus-tiny/data", png, profile, profile, judged, 2, {"audio": 6.0},
                              figure2.SETTINGS["tiny"], results["1.2"]["run_dir"])
    text = open(page).read()
    assert "figure2.png" in text and "<th>codes eval NLL</th>" in text and "verdict holds" in text
    probe = check_page(page, n_images=3, n_audio=0)
    assert any(i["src"] == "figure2.png" for i in probe["images"])


def test_the_probe_sees_a_missing_image_and_a_broken_audio_source(tmp_path):
    """The Chromium check is not vacuous: a page whose image is missing and whose wav is not audio fails."""
    (tmp_path / "noise.wav").write_bytes(b"not a wav file")
    page = pages.write_page(str(tmp_path / "broken.html"), "broken",
                            [pages.Raw("<img src='missing.png'><audio src='noise.wav'></audio>"),
                             pages.table(["a"], [[1]])])
    probe = open_in_chromium(page)
    assert [i["ok"] for i in probe["images"]] == [False]
    assert [a["ok"] for a in probe["audio"]] == [False]


def test_code_usage_shows_a_collapse(rows):
    _, results = rows
    usage = pages.code_usage(results["1.2"]["run_dir"])
    assert usage["in_use"] == 3 and usage["n_codes"] == 256 and 1 < usage["perplexity"] <= 3
    assert pages.code_usage(results["1.1"]["run_dir"]) is None  # WaveNet: no codes


def test_hparams_session_holds_the_experiment_under_dotted_keys(tmp_path):
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.plugins.hparams import plugin_data_pb2
    run = tmp_path / "run"
    run.mkdir()
    exp = configs.table1_row("1.2", "tiny")
    (run / "experiment.json").write_text(json.dumps(exp.to_dict()))
    assert hparams.ensure(str(run)) and not hparams.ensure(str(run))  # written once
    starts = []
    for name in os.listdir(run / "tensorboard"):
        for event in event_file_loader.EventFileLoader(str(run / "tensorboard" / name)).Load():
            for v in event.summary.value:
                if v.tag == "_hparams_/session_start_info":
                    data = plugin_data_pb2.HParamsPluginData.FromString(v.metadata.plugin_data.content)
                    starts.append(data.session_start_info)
    assert len(starts) == 1
    hp = starts[0].hparams
    assert hp["model.hop"].number_value == exp.model.hop
    assert hp["train.learning_rate"].number_value == pytest.approx(exp.train.learning_rate)
    assert hp["model.quantizer"].string_value == exp.model.quantizer and hp["paper_row"].string_value == "1.2"


def test_report_only_rewrites_the_pages_from_finished_rows_without_training(rows, tmp_path, capsys):
    src, results = rows
    for r in results.values():
        with open(os.path.join(r["run_dir"], "row.json"), "w") as f:
            json.dump(r, f)
    out = str(tmp_path / "report")
    assert table1.main(["--scale", "tiny", "--rows", "1.1,1.2,1.3", "--report-only", "--from", src, "--out", out,
                        "--data", "runs/corpus-tiny/data"]) == 0
    assert sorted(os.listdir(out)) == ["assets", "table1.csv", "table1.html", "table1.md"]
    text = open(os.path.join(out, "table1.html")).read()
    assert text.count("<audio") == 2 * 2 * 2  # the rows' wavs, copied into the page's assets/
    parser = Sources()
    parser.feed(text)
    assert all(s.startswith("assets/") and os.path.exists(os.path.join(out, s)) for s in parser.srcs)
    assert table1.main(["--scale", "tiny", "--report-only", "--from", str(tmp_path / "none"), "--out", out]) == 1

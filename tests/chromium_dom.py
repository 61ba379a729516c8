"""Headless Chromium for the page tests: the DOM of a page after its scripts ran.

Chromium sometimes prints the dumped DOM and then does not exit (about 1 run in 5 here): waiting
for the process would cost the whole timeout and fail the test. So the DOM is read as it is
printed, and the browser is stopped once the marker (the test's probe output) has arrived."""
import re
import subprocess
import threading
import time

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--mute-audio", "--allow-file-access-from-files",
         "--virtual-time-budget=20000", "--dump-dom"]


def dump_dom(chromium: str, url: str, marker: str, timeout: float = 120.0) -> tuple[str, str]:
    """(stdout, stderr) of `chromium --headless ... --dump-dom url`, returned as soon as stdout
    matches the regular expression `marker` (e.g. "</html>", the end of the dump; the browser is
    then killed), or when it exits, or after `timeout` seconds (whatever it printed by then)."""
    proc = subprocess.Popen([chromium, *FLAGS, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = [], []
    readers = [threading.Thread(target=lambda s=s, b=b: b.extend(iter(s.readline, "")), daemon=True)
               for s, b in ((proc.stdout, out), (proc.stderr, err))]
    for r in readers:
        r.start()
    pattern, deadline = re.compile(marker, re.S), time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline and not pattern.search("".join(out)):
        time.sleep(0.1)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for r in readers:
        r.join(timeout=5)
    return "".join(out), "".join(err)

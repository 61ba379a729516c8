"""Dependencies (issue 14): setup.cfg states compatible ranges (so installing tf-ada into an existing
environment does not downgrade it needlessly); constraints.txt pins the exact tested versions and the
Makefile installs with it; every pin satisfies its range."""
import configparser
import os
import re

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def setup_requirements() -> dict:
    """{section: [Requirement]} of install_requires and each extra."""
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    lines = lambda text: [Requirement(line) for line in text.splitlines() if line.strip()]
    out = {"install_requires": lines(cfg["options"]["install_requires"])}
    for extra, text in cfg["options.extras_require"].items():
        out[extra] = lines(text)
    return out


def constraints() -> dict:
    pins = {}
    with open(os.path.join(ROOT, "constraints.txt")) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if line:
                name, _, version = line.partition("==")
                assert version, f"constraints.txt: {line!r} is not an exact pin"
                pins[re.sub(r"[-_.]+", "-", name).lower()] = Version(version)
    return pins


def test_install_requires_are_ranges_except_tensorflow_io():
    for req in setup_requirements()["install_requires"]:
        exact = [s for s in req.specifier if s.operator == "=="]
        assert bool(exact) == (req.name == "tensorflow-io"), f"{req}: a range, not an exact pin"
    reqs = {r.name: str(r.specifier) for r in setup_requirements()["install_requires"]}
    assert set(reqs["tensorflow"].split(",")) == {">=2.16", "<2.17"}
    assert reqs["tensorflow-io"] == "==0.37.1"


def test_every_requirement_is_pinned_in_constraints_within_its_range():
    pins = constraints()
    for section, reqs in setup_requirements().items():
        for req in reqs:
            name = re.sub(r"[-_.]+", "-", req.name).lower()
            assert name in pins, f"{section}: {req.name} has no pin in constraints.txt"
            assert req.specifier.contains(pins[name], prereleases=True), \
                f"{section}: constraints.txt pins {req.name}=={pins[name]}, outside {req}"


def test_the_makefile_installs_with_the_constraints():
    with open(os.path.join(ROOT, "Makefile")) as f:
        makefile = f.read()
    install = [line for line in makefile.splitlines() if "pip install" in line and "-e " in line]
    assert install and all("-c constraints.txt" in line for line in install)
    assert re.search(r"^\$\(STAMP\):.*constraints\.txt", makefile, re.M)  # a new pin reinstalls


def test_readme_states_the_versions_tensorflow_io_allows():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    assert "Python 3.9-3.12" in readme and "TensorFlow 2.16" in readme and "constraints.txt" in readme

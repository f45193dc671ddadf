"""Installs are reproducible: the README's set-up commands and .ci/run install the exact
versions in constraints.txt, which pins every dependency setup.cfg names at a version its
range allows. `.ci/update-constraints` remakes it; a dependency added to setup.cfg without
remaking it fails here."""
import configparser
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    lines = (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines()
    found = [re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line) for line in lines
             if line.strip() and not line.startswith("#")]
    assert all(found), "constraints.txt holds only name==version lines and comments"
    return {canonicalize_name(m.group(1)): m.group(2) for m in found}


def test_the_set_up_commands_and_ci_install_the_pinned_versions():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    setup = readme[readme.index("## Set up"):readme.index("## What is here")]
    commands = re.findall(r"```sh\n(.*?)\n```", setup, re.DOTALL)
    install = "python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e"
    assert commands == [f"{install} . && .venv/bin/crbm serve",
                        f"{install} '.[test]' && .venv/bin/pytest"]
    assert f"{install} '.[test]'" in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_constraints_pin_every_dependency_within_its_range():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg", encoding="utf-8")
    lines = config["options"]["install_requires"].splitlines() + \
        config["options.extras_require"]["test"].splitlines()
    wanted = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    pinned = pins()
    assert len(wanted) > 30
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in constraints.txt: run .ci/update-constraints"
        assert requirement.specifier.contains(pinned[name], prereleases=True), \
            f"{name}=={pinned[name]} is outside setup.cfg's {requirement.specifier}"

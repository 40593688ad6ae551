"""pyproject.toml and environment.yml must list the same dependencies; the repository has its parts."""

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the package itself runs on 3.10

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"pytorch": "torch"}  # conda package name -> PyPI name
SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$")


def _split(requirement: str) -> tuple[str, str]:
    name, version = SPEC.match(requirement).groups()
    return name.lower().replace("_", "-"), version.replace(" ", "")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    requirements = project["dependencies"] + extras["course"] + extras["dev"]
    return dict(_split(r) for r in requirements if not r.startswith("tinylm_core["))


def _environment_yml() -> dict[str, str]:
    deps, inside = {}, False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            inside = True
        elif inside and re.match(r"^\s+-\s", line):
            name, version = _split(line.split("-", 1)[1].split("#")[0])
            if name not in {"python", "pip"}:
                deps[CONDA_NAMES.get(name, name)] = version
        elif inside and line and not line.startswith(" "):
            inside = False
    return deps


def test_environment_yml_matches_pyproject():
    pyproject, conda = _pyproject(), _environment_yml()
    assert pyproject, "no dependencies found in pyproject.toml"
    missing = sorted(set(pyproject) - set(conda))
    extra = sorted(set(conda) - set(pyproject))
    versions = sorted(n for n in set(pyproject) & set(conda) if pyproject[n] != conda[n])
    assert not missing, f"in pyproject.toml but not environment.yml: {missing}"
    assert not extra, f"in environment.yml but not pyproject.toml: {extra}"
    assert not versions, f"version bounds differ for: {versions}"


def test_python_version_agrees():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.10"
    assert re.search(r"-\s*python>=3\.10\b", (ROOT / "environment.yml").read_text())


def test_repository_has_its_parts():
    for part in ["notebooks", "tinylm_core", "tests", "bench", "README.md", "LICENSE", "Makefile"]:
        assert (ROOT / part).exists(), f"{part} is missing"
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    run = (ROOT / ".ci" / "run").read_text()
    assert "make test" in run and "TORCH=torch==" in run, ".ci/run must pick the CPU torch wheel"

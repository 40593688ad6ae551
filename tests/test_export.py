"""The package is generated from the notebooks: check they agree, and that the exporter refuses bad input."""

import json
import shutil
from pathlib import Path

import pytest

from tinylm_core import _export
from tinylm_core._export import ExportError, plan_export, write_plan

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob(_export.NOTEBOOK_GLOB))


def test_committed_package_matches_notebooks(tmp_path):
    """Re-export into a temporary package and compare with what is committed."""
    package = ROOT / "tinylm_core"
    scratch = tmp_path / "tinylm_core"
    scratch.mkdir()
    for generated in package.glob("*.py"):
        shutil.copy(generated, scratch / generated.name)
    plan = plan_export(package_dir=scratch)
    problems = []
    for path, text in plan.items():
        committed = package / path.name
        if text is None:
            problems.append(f"{committed.name} is generated but no notebook exports it any more")
        elif not committed.exists():
            problems.append(f"{committed.name} is missing")
        elif committed.read_text(encoding="utf-8") != text:
            source = _export.HEADER_RE.match(text)
            origin = source.group(1) if source else "the modules' __all__ lists"
            problems.append(f"tinylm_core/{committed.name} differs from what {origin} exports")
    assert not problems, "run `make export` and commit:\n" + "\n".join(problems)


def test_every_notebook_exports_something():
    for notebook in NOTEBOOKS:
        assert _export.read_notebook(notebook), f"{notebook.name} has no '#| export' cell"


def test_generated_modules_have_header_and_all():
    for module in _export.collect(NOTEBOOKS).values():
        text = module.render()
        assert text.startswith(f"# This file is generated from {module.notebook}")
        assert "Do not edit it: edit the notebook" in text
        namespace: dict = {}
        exec(compile(text, module.name, "exec"), namespace)
        assert namespace["__all__"] == module.public_names()
        assert all(not n.startswith("_") and n in namespace for n in namespace["__all__"])


def test_public_api_is_reexported_from_package():
    import tinylm_core

    for module in _export.collect(NOTEBOOKS).values():
        for name in module.public_names():
            assert hasattr(tinylm_core, name), f"tinylm_core.{name} (from {module.name}) missing"


# --- the exporter itself, on small notebooks written here ---------------------------------------


def _notebook(path: Path, *sources: str) -> Path:
    cells = [
        {"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
        for s in sources
    ]
    cells.insert(0, {"cell_type": "markdown", "metadata": {}, "source": "# A lesson"})
    path.write_text(
        json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    return path


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    notebooks, package = tmp_path / "notebooks", tmp_path / "pkg"
    notebooks.mkdir()
    package.mkdir()
    monkeypatch.setattr(_export, "NOTEBOOK_DIR", notebooks)
    return notebooks, package


def test_export_copies_cells_in_order_without_directives(workspace):
    notebooks, package = workspace
    _notebook(
        notebooks / "01_demo.ipynb",
        "#| default_exp demo",
        "#| export\nimport math",
        "x = 1  # not exported",
        "#| export\ndef area(r):\n    return math.pi * r**2",
        "#| export\n_HIDDEN = 2\nPUBLIC = 3",
    )
    write_plan(plan_export(package_dir=package))
    text = (package / "demo.py").read_text()
    assert "#|" not in text and "not exported" not in text
    assert text.index("import math") < text.index("def area")
    namespace: dict = {}
    exec(text, namespace)
    assert namespace["__all__"] == ["area", "PUBLIC"]
    assert namespace["area"](1) == pytest.approx(3.14159, rel=1e-5)
    init = (package / "__init__.py").read_text()
    assert "from .demo import area, PUBLIC" in init


def test_export_to_named_module_and_stale_module_removed(workspace):
    notebooks, package = workspace
    (package / "gone.py").write_text(_export.HEADER.format(notebook="notebooks/09_old.ipynb"))
    (package / "handwritten.py").write_text("VALUE = 1\n")
    _notebook(
        notebooks / "01_demo.ipynb",
        "#| default_exp demo",
        "#| export\ndef f():\n    return 1",
        "#| export extra\ndef g():\n    return 2",
    )
    write_plan(plan_export(package_dir=package))
    assert "def g" in (package / "extra.py").read_text()
    assert "def g" not in (package / "demo.py").read_text()
    assert not (package / "gone.py").exists()
    assert (package / "handwritten.py").exists(), "hand-written files are never touched"


@pytest.mark.parametrize(
    "sources, message",
    [
        (["#| export\ndef f(): pass", "#| default_exp demo"], "before any '#| default_exp'"),
        (["#| default_exp demo", "#| export\ndef f(:\n    pass"], "syntax error"),
        (["#| default_exp Not-A-Module"], "not a valid module name"),
    ],
)
def test_bad_notebook_gives_clear_error_and_writes_nothing(workspace, sources, message):
    notebooks, package = workspace
    _notebook(notebooks / "01_good.ipynb", "#| default_exp good", "#| export\nA = 1")
    _notebook(notebooks / "02_bad.ipynb", *sources)
    with pytest.raises(ExportError, match=message) as info:
        write_plan(plan_export(package_dir=package))
    assert "02_bad.ipynb" in str(info.value)
    assert list(package.iterdir()) == [], "nothing may be written when the export fails"


def test_two_notebooks_claiming_one_module_is_refused(workspace):
    notebooks, package = workspace
    _notebook(notebooks / "01_a.ipynb", "#| default_exp shared", "#| export\nA = 1")
    _notebook(notebooks / "02_b.ipynb", "#| default_exp shared", "#| export\nB = 1")
    with pytest.raises(ExportError, match="claimed by both") as info:
        write_plan(plan_export(package_dir=package))
    assert "01_a.ipynb" in str(info.value) and "02_b.ipynb" in str(info.value)
    assert list(package.iterdir()) == []


def test_partial_export_writes_only_named_notebook(workspace):
    notebooks, package = workspace
    first = _notebook(notebooks / "01_a.ipynb", "#| default_exp a", "#| export\nA = 1")
    _notebook(notebooks / "02_b.ipynb", "#| default_exp b", "#| export\nB = 1")
    write_plan(plan_export([first], package_dir=package))
    assert sorted(p.name for p in package.iterdir()) == ["__init__.py", "a.py"]
    # a partial export may not take a module that another notebook owns
    _notebook(notebooks / "03_c.ipynb", "#| default_exp b", "#| export\nC = 1")
    with pytest.raises(ExportError, match="claimed by both"):
        plan_export([notebooks / "03_c.ipynb"], package_dir=package)


def test_main_reports_failure_without_traceback(workspace, capsys):
    notebooks, package = workspace
    _notebook(notebooks / "01_bad.ipynb", "#| export\nA = 1")
    assert _export.main([str(notebooks / "01_bad.ipynb")]) == 1
    assert "nothing written" in capsys.readouterr().err

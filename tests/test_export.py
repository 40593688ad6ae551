"""The package is generated from the notebooks: check they agree, and that the exporter refuses bad input."""

import ast
import json
from pathlib import Path

import pytest

from tools import export as _export
from tools.export import ExportError, plan_export, write_plan

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob(_export.NOTEBOOK_GLOB))


def test_committed_package_matches_notebooks(tmp_path):
    """Re-export into a temporary package and compare with what is committed."""
    package = ROOT / "tinylm_core"
    problems = [
        f"tinylm_core/{p.name} is generated but no notebook exports it any more; git rm it"
        for p in _export.stale_modules()
    ]
    for path, text in plan_export(package_dir=tmp_path).items():
        committed = package / path.name
        if not committed.exists():
            problems.append(f"tinylm_core/{committed.name} is missing")
        elif committed.read_text(encoding="utf-8") != text:
            origin = _export.HEADER_RE.match(text).group(1)
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
        namespace: dict = {"__name__": f"tinylm_core.{module.name}", "__package__": "tinylm_core"}
        exec(compile(text, module.name, "exec"), namespace)
        assert namespace["__all__"] == module.public_names()
        assert all(not n.startswith("_") and n in namespace for n in namespace["__all__"])


def test_curated_public_api():
    """`tinylm_core.__all__` is a short list chosen by hand; every name in it exists."""
    import tinylm_core

    assert 15 <= len(tinylm_core.__all__) <= 35, "the public API is meant to stay small"
    assert len(set(tinylm_core.__all__)) == len(tinylm_core.__all__)
    for name in tinylm_core.__all__:
        assert getattr(tinylm_core, name) is not None, f"tinylm_core.{name} missing"


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
    assert not (package / "__init__.py").exists(), "__init__.py is written by hand"
    assert "# cell 3\nimport math" in text, "each piece names the notebook cell it came from"


def test_methods_added_across_cells_land_in_the_class_body(workspace):
    notebooks, package = workspace
    _notebook(
        notebooks / "01_demo.ipynb",
        "#| default_exp demo",
        '#| export\nclass Counter:\n    """Counts."""\n\n    def __init__(self):\n'
        "        self.n = 0\n\n\ndef helper():\n    return 1",
        "Counter().n  # a check between the cells, not exported",
        "#| export\n# why add exists\n@add_to_class(Counter)\ndef add(self, k=1):\n"
        "    self.n += k\n    return self\n\n\nLIMIT = 3",
        "#| export\n@add_to_class(Counter)\n@property\ndef double(self):\n    return 2 * self.n",
    )
    write_plan(plan_export(package_dir=package))
    text = (package / "demo.py").read_text()
    assert "add_to_class" not in text
    tree = ast.parse(text)
    counter = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    assert [f.name for f in counter.body if isinstance(f, ast.FunctionDef)] == [
        "__init__",
        "add",
        "double",
    ]
    assert text.index("# why add exists") < text.index("def add") < text.index("def helper")
    namespace: dict = {}
    exec(text, namespace)
    assert namespace["__all__"] == ["Counter", "helper", "LIMIT"]
    assert namespace["Counter"]().add(2).double == 4


def test_method_for_an_unknown_class_is_refused(workspace):
    notebooks, package = workspace
    _notebook(
        notebooks / "01_demo.ipynb",
        "#| default_exp demo",
        "#| export\n@add_to_class(Missing)\ndef f(self):\n    return 1",
    )
    with pytest.raises(ExportError, match="no earlier exported cell"):
        plan_export(package_dir=package)


def test_exporter_without_notebooks_is_an_error_and_changes_nothing(tmp_path, monkeypatch, capsys):
    """Run from an installed package or the wrong folder: a clear error, no file touched."""
    package = tmp_path / "pkg"
    package.mkdir()
    module = package / "attention.py"
    module.write_text(_export.HEADER.format(notebook="notebooks/01_attention.ipynb"))
    monkeypatch.setattr(_export, "NOTEBOOK_DIR", tmp_path / "notebooks")
    monkeypatch.setattr(_export, "PACKAGE_DIR", package)
    assert _export.main([]) == 1
    assert "no notebooks matching" in capsys.readouterr().err
    assert [p.name for p in package.iterdir()] == ["attention.py"]


def test_export_to_named_module_and_stale_module_kept(workspace, monkeypatch, capsys):
    notebooks, package = workspace
    (package / "gone.py").write_text(_export.HEADER.format(notebook="notebooks/09_old.ipynb"))
    (package / "handwritten.py").write_text("VALUE = 1\n")
    _notebook(
        notebooks / "01_demo.ipynb",
        "#| default_exp demo",
        "#| export\ndef f():\n    return 1",
        "#| export extra\ndef g():\n    return 2",
    )
    monkeypatch.setattr(_export, "PACKAGE_DIR", package)
    assert _export.main([]) == 0
    assert "def g" in (package / "extra.py").read_text()
    assert "def g" not in (package / "demo.py").read_text()
    assert (package / "gone.py").exists(), "the exporter never deletes a file"
    assert "stale: " in capsys.readouterr().out
    assert _export.stale_modules(package) == [package / "gone.py"]
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
    assert sorted(p.name for p in package.iterdir()) == ["a.py"]
    # a partial export may not take a module that another notebook owns
    _notebook(notebooks / "03_c.ipynb", "#| default_exp b", "#| export\nC = 1")
    with pytest.raises(ExportError, match="claimed by both"):
        plan_export([notebooks / "03_c.ipynb"], package_dir=package)


def test_main_reports_failure_without_traceback(workspace, capsys):
    notebooks, package = workspace
    _notebook(notebooks / "01_bad.ipynb", "#| export\nA = 1")
    assert _export.main([str(notebooks / "01_bad.ipynb")]) == 1
    assert "nothing written" in capsys.readouterr().err


def test_notebooks_are_committed_as_jupyterlab_saves_them():
    """Opening a lesson in JupyterLab must not mark it modified (kernel name, timing metadata)."""
    for notebook in NOTEBOOKS:
        text = notebook.read_text(encoding="utf-8")
        assert text == _export.lab_saved_text(json.loads(text)), (
            f"{notebook.name} is not saved as JupyterLab saves it; run `make export`"
        )


def test_wheel_holds_the_library_only(tmp_path):
    """`pip install .` gives the library: no notebooks, no tools, no course-only dependencies."""
    import subprocess
    import sys
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("tinylm_core-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "tinylm_core/model.py" in names and "tinylm_core/__main__.py" in names
    assert not [n for n in names if n.startswith(("tools/", "notebooks/", "tests/"))]
    assert not [n for n in names if "export" in n or "classroom" in n]
    required = [
        line.split(":", 1)[1].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert sorted(r.split(">")[0].split("=")[0] for r in required) == [
        "numpy",
        "regex",
        "torch",
        "tqdm",
    ]


def test_sizes_stay_within_the_course_limits(capsys):
    """No exported cell over 60 lines, median at most 20, modules ~300 lines, classes ~150."""
    from tools import cell_stats

    status = cell_stats.main()
    assert status == 0, capsys.readouterr().out

"""The build edition: students write chosen pieces of the package; hidden checks grade them.

A toy course written here (two notebooks, a module that lesson 02 imports, hidden pytest checks and
a config) keeps this fast; only the last test reads the real course. Gradings start kernels and
pytest processes (seconds each), so the graded scenarios share one module fixture.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools import classroom as _classroom
from tools.classroom_build import load_config
from tools.classroom_markup import ClassroomError, find_leaks

TIMEOUT = 20.0
ADD_TO_CLASS = (
    "def add_to_class(cls):\n    def add(f):\n        setattr(cls, f.__name__, f)\n"
    "        return f\n\n    return add"
)
WEIGHTS = (
    '#| export\nimport torch\n\n\ndef causal_weights(scores):\n    """Softmax over the keys, '
    'future keys masked: (T, T) -> (T, T)."""\n    T = scores.size(-1)\n'
    "    allowed = torch.ones(T, T, dtype=torch.bool).tril()  # BUILD_SECRET_MASK\n"
    '    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)'
)
NO_MASK = (
    '#| export\nimport torch\n\n\ndef causal_weights(scores):\n    """Softmax over the keys, '
    'future keys masked: (T, T) -> (T, T)."""\n    return torch.softmax(scores, dim=-1)'
)
COUNTER = (
    '#| export\nclass Counter:\n    """Counts up."""\n\n    def __init__(self, start=0):\n'
    "        self.value = start"
)
BUMP = (
    '#| export\n@add_to_class(Counter)\ndef bump(self, by=1):\n    """Add `by`; return the '
    'new value."""\n    self.value += by  # BUILD_SECRET_BUMP\n    return self.value'
)
CLAMP = (
    "import torch\n\n\ndef clamp(x, lo, hi):\n    ### BEGIN SOLUTION\n"
    "    return max(lo, min(hi, x))  # SECRET_CLAMP\n    ### END SOLUTION"
)
CLAMP_VISIBLE = (
    "# Check: inside the range (1 point)\n"
    "assert torch.allclose(torch.tensor([float(clamp(v, 0, 10)) for v in (5, 7)]), torch.tensor([5.0, 7.0]))"
)
CLAMP_HIDDEN = (
    "### BEGIN HIDDEN TESTS\n# Check: both ends (2 points)\n"
    "assert torch.allclose(torch.tensor([float(clamp(-1, 0, 10)), float(clamp(11, 0, 10))]), "
    "torch.tensor([0.0, 10.0])), 'SECRET_HIDDEN_CLAMP'\n### END HIDDEN TESTS"
)
ANSWER = "**Your answer:** why clamp and not min?\n\n### BEGIN SOLUTION\nSECRET_MODEL_ANSWER\n### END SOLUTION"
HIDDEN_TESTS = """\
import torch

from tinylm_core.demo import Counter, causal_weights


def test_rows_sum_to_one():
    weights = causal_weights(torch.randn(5, 5))
    assert torch.allclose(weights.sum(-1), torch.ones(5)), "each row must sum to 1"


def test_future_is_masked():
    weights = causal_weights(torch.randn(5, 5))
    assert torch.allclose(weights.triu(1), torch.zeros(5, 5)), "HIDDEN_SECRET: future keys get 0"


def test_bump():
    counter = Counter(2)
    assert counter.bump(3) == 5 and counter.value == 5, "bump adds and returns the new value"
"""
CONFIG_TEXT = {
    "lessons": {
        "01": {
            "pieces": {
                "causal_weights": {
                    "what": "Mask the future keys with -inf, then softmax over the keys.",
                    "checks": {"hidden/test_demo_build.py::test_rows_sum_to_one": 1,
                               "hidden/test_demo_build.py::test_future_is_masked": 2},
                },
                "Counter.bump": {
                    "what": "Add `by` to the value and return it.",
                    "checks": {"hidden/test_demo_build.py::test_bump": 1},
                },
            }
        }
    }
}  # fmt: skip


def _cell(kind, source, cell_id):
    cell = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
    cell.id = cell_id
    return cell


def _write(path: Path, cells) -> None:
    nb = new_notebook(cells=[_cell(*c) for c in cells])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def make_course(root: Path) -> tuple[Path, dict]:
    """The teacher's toy course: notebooks/, pkg/ (hand-written), teacher/ (config + hidden tests)."""
    for folder in ("notebooks", "pkg", "tests", "teacher/hidden"):
        (root / folder).mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text('"""A toy package."""\n')
    (root / "teacher" / "hidden" / "test_demo_build.py").write_text(HIDDEN_TESTS)
    (root / "teacher" / "build.json").write_text(json.dumps(CONFIG_TEXT))
    _write(
        root / "notebooks" / "01_demo.ipynb",
        [
            ("markdown", "# Lesson 1", "intro"), ("code", "#| default_exp demo", "setup"),
            ("code", ADD_TO_CLASS, "patch"), ("code", WEIGHTS, "weights"),
            ("code", "import torch\n\nassert causal_weights(torch.zeros(3, 3))[0, 1] == 0", "weights-check"),
            ("code", COUNTER, "counter"), ("code", BUMP, "bump"),
            ("code", "assert Counter(1).bump() == 2", "bump-check"),
            ("markdown", "### Exercise 1.1: Clamp (3 points)", "ex11"), ("code", CLAMP, "clamp"),
            ("code", CLAMP_VISIBLE, "clamp-visible"), ("code", CLAMP_HIDDEN, "clamp-hidden"),
            ("markdown", ANSWER, "clamp-answer"),
        ],
    )  # fmt: skip
    _write(
        root / "notebooks" / "02_use.ipynb",
        [
            ("code", "import torch\n\nfrom tinylm_core.demo import Counter, causal_weights", "imports"),
            ("markdown", "### Exercise 2.1: Last row", "ex21"),
            ("code", "def last_row(T):\n    ### BEGIN SOLUTION\n    return causal_weights(torch.zeros(T, T))[-1]  # SECRET_LAST\n    ### END SOLUTION", "last"),
            ("code", "assert torch.allclose(last_row(4), torch.full((4,), 0.25))", "last-check"),
        ],
    )  # fmt: skip
    return root, load_config(root / "teacher" / "build.json")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root, pieces = make_course(tmp_path_factory.mktemp("buildcourse"))
    _classroom.build_student(root / "notebooks", root / "build_edition", root / "pkg", pieces)
    _classroom.build_student(root / "notebooks", root / "regular_edition", root / "pkg")
    return root, pieces


def grade(root, work, name, pieces, **options):
    return _classroom.grade_student(
        work, notebook_dir=root / "notebooks", tests_dir=root / "tests", out=root / "grades",
        timeout=TIMEOUT, name=name, package_dir=root / "pkg", pieces=pieces, **options,
    )  # fmt: skip


def points(report) -> dict[tuple[str, str], tuple[str, int]]:
    return {(r["exercise"], r["check"]): (r["status"], r["points"]) for r in report["checks"]}


def hand_in(edition: Path, work: Path, sources: dict[str, dict[str, str]]) -> Path:
    shutil.copytree(edition, work)
    for name, cells in sources.items():
        nb = nbformat.read(work / "notebooks" / name, 4)
        for cell in nb.cells:
            cell.source = cells.get(cell.id, cell.source)
        nb.cells = [c for c in nb.cells if cells.get(c.id) != "DELETE"]
        nbformat.write(nb, work / "notebooks" / name)
    return work


# --- the edition -----------------------------------------------------------------------------------


def test_pieces_become_stubs_with_a_docstring_saying_what_to_write(course):
    root, _ = course
    cells = {
        c.id: c.source
        for c in nbformat.read(root / "build_edition/notebooks/01_demo.ipynb", 4).cells
    }
    assert cells["weights"] == (
        "#| export\nimport torch\n\n\ndef causal_weights(scores):\n"
        '    """Softmax over the keys, future keys masked: (T, T) -> (T, T).\n\n'
        "    Build exercise (lesson 01, 3 points): Mask the future keys with -inf, then softmax over "
        'the\n    keys.\n    """\n'
        '    raise NotImplementedError("TODO(build 01): write causal_weights, as its docstring says")'
    )
    assert cells["bump"].startswith("#| export\n@add_to_class(Counter)\ndef bump(self, by=1):")
    assert cells["bump"].endswith(
        'raise NotImplementedError("TODO(build 01): write Counter.bump, as its docstring says")'
    )
    assert cells["counter"] == COUNTER and cells["weights-check"].startswith("import torch")
    namespace = {}
    exec(cells["weights"].replace("#| export", ""), namespace)
    with pytest.raises(NotImplementedError, match="TODO.build 01.: write causal_weights"):
        namespace["causal_weights"](None)  # in the notebook, the stub raises: no fallback there


def test_no_solution_hidden_test_or_model_answer_ships(course):
    root, _ = course
    for path in (root / "build_edition").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in (
                b"SECRET_",
                b"BUILD_SECRET",
                b"HIDDEN_SECRET",
                b"test_future_is_masked",
                b"allowed = ",
            ):
                assert secret not in data, f"{secret!r} leaked into {path}"
    hidden_line = 'assert torch.allclose(weights.triu(1), torch.zeros(5, 5)), "HIDDEN_SECRET: future keys get 0"'
    assert find_leaks(root / "build_edition", {hidden_line}) == []
    assert find_leaks(root / "teacher", {hidden_line}) != []  # the check does find it where it is
    answer = nbformat.read(root / "build_edition/notebooks/01_demo.ipynb", 4).cells[-1].source
    assert answer == "**Your answer:** why clamp and not min?\n\n_(write your answer here)_"


def test_a_hidden_test_line_in_an_output_is_a_leak(tmp_path):
    root, pieces = make_course(tmp_path)
    path = root / "notebooks" / "02_use.ipynb"
    nb = nbformat.read(path, 4)
    nb.cells[0].outputs = [
        nbformat.v4.new_output("stream", text="    weights = causal_weights(torch.randn(5, 5))\n")
    ]
    nbformat.write(nb, path)
    with pytest.raises(ClassroomError, match="would leak"):
        _classroom.build_student(root / "notebooks", root / "out", root / "pkg", pieces)


def test_a_config_naming_no_piece_is_refused(tmp_path):
    root, _ = make_course(tmp_path)
    config = json.loads((root / "teacher" / "build.json").read_text())
    config["lessons"]["01"]["pieces"]["Counter.reset"] = {
        "what": "x",
        "checks": {"hidden/t.py::t": 1},
    }
    (root / "teacher" / "build.json").write_text(json.dumps(config))
    with pytest.raises(ClassroomError, match=r"Counter\.reset"):
        _classroom.build_student(
            root / "notebooks",
            root / "out",
            root / "pkg",
            load_config(root / "teacher" / "build.json"),
        )


def _run_in(package_parent: Path, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=package_parent
    )


def test_a_stubbed_piece_falls_back_to_the_reference_in_the_package(course):
    root, _ = course
    run = _run_in(root / "build_edition", (
        "import torch, warnings\nfrom tinylm_core import _build\n"
        "from tinylm_core.demo import Counter, causal_weights\n"
        "w = causal_weights(torch.zeros(3, 3))\nassert torch.allclose(w[0], torch.tensor([1.0, 0, 0]))\n"
        "assert Counter(2).bump(3) == 5\nprint(_build.USED)"
    ))  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "['demo.causal_weights', 'demo.Counter.bump']"
    assert "teacher's reference stands in for causal_weights, Counter.bump" in run.stderr
    # once the student writes a piece (and exports), theirs is used and the other still falls back
    module = root / "build_edition" / "tinylm_core" / "demo.py"
    text = module.read_text()
    written = text.replace(
        'raise NotImplementedError("TODO(build 01): write causal_weights, as its docstring says")',
        "return 'mine'",
    )
    try:
        module.write_text(written)
        run = _run_in(
            root / "build_edition",
            "from tinylm_core.demo import causal_weights\nfrom tinylm_core import _build\nprint(causal_weights(None), _build.USED)",
        )
        assert run.stdout.strip() == "mine ['demo.Counter.bump']", run.stderr
    finally:
        module.write_text(text)


# --- grading ---------------------------------------------------------------------------------------


def test_the_teachers_copy_gets_full_marks_in_both_editions(course):
    root, pieces = course
    build = grade(root, root / "notebooks", "teacher-build", pieces)
    regular = grade(root, root / "notebooks", "teacher-regular", None)
    assert (build["score"], build["max_score"]) == (8, 8), build["checks"]
    assert (regular["score"], regular["max_score"]) == (4, 4)
    assert build["fallbacks"] == [] and build["tampering"] == []
    assert points(build)[("1.1", "both ends")] == ("passed", 2)
    assert points(build)[("build causal_weights", "test_future_is_masked")] == ("passed", 2)
    assert (
        "| build Counter.bump | test_bump | ✅ pass | 1/1 |"
        in (root / "grades/teacher-build/report.md").read_text()
    )


def test_the_untouched_build_edition_scores_zero_and_reports_the_fallbacks(course):
    root, pieces = course
    report = grade(root, root / "build_edition", "untouched", pieces)
    assert (report["score"], report["max_score"]) == (0, 8)
    assert {r["status"] for r in report["checks"]} == {"not attempted"}
    assert report["fallbacks"] == ["01 causal_weights", "01 Counter.bump"]
    builds = [r for r in report["checks"] if r["exercise"].startswith("build")]
    assert len(builds) == 3 and all("fallback" in r["message"] for r in builds)
    assert not any(info["ran"] for info in report["notebooks"].values())


def test_wrong_pieces_lose_exactly_their_checks_and_tampering_gains_nothing(course):
    root, pieces = course
    work = hand_in(root / "build_edition", root / "carol", {"01_demo.ipynb": {
        "weights": NO_MASK,  # forgets the mask: loses test_future_is_masked (2 points) only
        "bump": BUMP.replace("BUILD_SECRET", "mine"),  # right
        # right inside the range, wrong at the ends, and replaces torch.allclose to hide it
        "clamp": "import torch\n\ntorch.allclose = lambda *a, **k: True\n\n\ndef clamp(x, lo, hi):\n    return x",
        "clamp-answer": "**Your answer:** min alone has no lower bound.",
    }, "02_use.ipynb": {"last-check": "DELETE"}})  # fmt: skip
    report = grade(root, work, "carol", pieces)
    assert points(report) == {
        ("1.1", "inside the range"): ("passed", 1), ("1.1", "both ends"): ("failed", 0),
        ("build causal_weights", "test_rows_sum_to_one"): ("passed", 1),
        ("build causal_weights", "test_future_is_masked"): ("failed", 0),
        ("build Counter.bump", "test_bump"): ("passed", 1),
        ("2.1", "all checks"): ("not attempted", 0),
    }  # fmt: skip
    messages = {(r["exercise"], r["check"]): r["message"] for r in report["checks"]}
    assert messages[("build causal_weights", "test_future_is_masked")].startswith(
        "AssertionError: HIDDEN_SECRET"
    )
    assert messages[("1.1", "both ends")] == "cell 12: AssertionError: SECRET_HIDDEN_CLAMP"
    assert report["tampering"] and "torch.allclose" in report["tampering"][0]
    assert report["fallbacks"] == []
    exercise = {e["exercise"]: e for e in report["exercises"]}["1.1"]
    assert (exercise["status"], exercise["points"], exercise["max_points"]) == ("partial", 1, 3)
    assert report["answers"] == {"1.1": "min alone has no lower bound."}


def test_a_piece_that_patches_torch_fails_its_checks(course):
    root, pieces = course
    cheat = NO_MASK.replace("\n\n\ndef", "\n\ntorch.allclose = lambda *a, **k: True\n\n\ndef")
    work = hand_in(
        root / "build_edition", root / "dave", {"01_demo.ipynb": {"weights": cheat, "bump": BUMP}}
    )
    report = grade(root, work, "dave", pieces, only=("01",))
    got = {
        r["check"]: (r["status"], r["message"])
        for r in report["checks"]
        if r["exercise"].startswith("build")
    }
    # each check fails: tampering is reported, and the honest run of the no-mask version fails too
    assert got["test_rows_sum_to_one"] == (
        "failed",
        "AssertionError: the student's code replaced torch.allclose; not counted",
    )
    assert got["test_future_is_masked"] == (
        "failed",
        "AssertionError: HIDDEN_SECRET: future keys get 0",
    )
    assert got["test_bump"] == (
        "failed",
        "AssertionError: the student's code replaced torch.allclose; not counted",
    )
    assert report["graded"] == ["01_demo.ipynb"] and report["score"] == 0


def test_class_grading_is_the_same_with_two_jobs(course):
    root, pieces = course
    good = hand_in(root / "build_edition", root / "class" / "erin", {"01_demo.ipynb": {"weights": WEIGHTS, "clamp-answer": "**Your answer:** both ends."}})  # fmt: skip
    shutil.copytree(root / "build_edition", root / "class" / "frank")
    books = []
    for jobs in (1, 2):
        out = root / f"grades-jobs{jobs}"
        argv = ["grade", str(good), str(root / "class" / "frank"), "--jobs", str(jobs), "--edition", "build",
                "--config", str(root / "teacher" / "build.json"), "--notebooks", str(root / "notebooks"),
                "--tests", str(root / "tests"), "--package", str(root / "pkg"), "--out", str(out),
                "--timeout", str(TIMEOUT)]  # fmt: skip
        assert _classroom.main(argv) == 0
        books.append((out / "gradebook.csv").read_text())
    assert books[0] == books[1]
    rows = list(csv.DictReader(books[0].splitlines()))
    assert {(r["student"], r["points"]) for r in rows if r["check"] == "test_future_is_masked"} == {
        ("erin", "2"),
        ("frank", "0"),
    }
    answers = (root / "grades-jobs2" / "answers" / "exercise_1.1.md").read_text()
    assert "## erin\n\nboth ends." in answers and "## frank" in answers
    assert "| erin |" in (root / "grades-jobs2" / "summary.md").read_text()


def test_grading_one_lesson_keeps_the_others_rows(course, tmp_path):
    root, pieces = course
    book = tmp_path / "gradebook.csv"
    first = grade(root, root / "build_edition", "gina", pieces)
    _classroom.update_gradebook(book, [first])
    again = grade(root, root / "build_edition", "gina", pieces, only=("02",))
    _classroom.update_gradebook(book, [again])
    rows = list(csv.DictReader(book.read_text().splitlines()))
    assert len(rows) == len(first["checks"]) and {r["notebook"] for r in again["checks"]} == {
        "02_use.ipynb"
    }


def test_a_released_lesson_ships_complete_and_is_not_graded(tmp_path):
    root, _ = make_course(tmp_path)
    assert load_config(root / "teacher" / "build.json", release=("01",)) == {}
    assert _classroom.main(
        ["student", "--edition", "build", "--config", str(root / "teacher" / "build.json"),
         "--release", "1", "--notebooks", str(root / "notebooks"), "--package", str(root / "pkg"),
         "--out", str(root / "out")]
    ) == 0  # fmt: skip
    text = (root / "out" / "notebooks" / "01_demo.ipynb").read_text()
    assert "TODO(build" not in text and "BUILD_SECRET_MASK" in text

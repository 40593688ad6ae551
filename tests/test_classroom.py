"""The classroom tooling: the student edition leaks no solution, and the autograder grades fairly.

Everything runs on a small course written here (two notebooks, one package test), not on the lessons,
so these tests stay fast and do not change when the lessons do. Each grading starts a kernel per
notebook (about a second each), so the graded scenarios are few and share one fixture.
"""

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tools import classroom as _classroom
from tools.classroom import ClassroomError, build_student, find_exercises, grade_student

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 5.0  # seconds per cell: the infinite loop below costs this once; trivial cells take ms

SQUARE = '#| export\ndef square(x):\n    """x times x."""\n    ### BEGIN SOLUTION\n    return x * x  # SECRET_SQUARE\n    ### END SOLUTION'
GREET = "def greet(name):\n    ### BEGIN SOLUTION\n    return f'hello {name}'  # SECRET_GREET\n    ### END SOLUTION"
GREET_CHECK = (
    "assert greet('ada') == 'hello ada', 'greet should say hello'\n"
    "### BEGIN HIDDEN TESTS\nassert greet('bob') == 'hello bob', 'hidden: SECRET_HIDDEN'\n"
    "### END HIDDEN TESTS"
)
SUM = (
    "from tinylm_core.demo import square\n\n\ndef sum_squares(n):\n    ### BEGIN SOLUTION\n"
    "    total = sum(square(i) for i in range(n))  # SECRET_SUM\n    return total\n"
    "    ### END SOLUTION"
)
CUBE = "def cube(x):\n    ### BEGIN SOLUTION\n    return x**3  # SECRET_CUBE\n    ### END SOLUTION"


def _cell(kind, source, cell_id, outputs=()):
    cell = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
    cell.id = cell_id
    if outputs:
        cell.outputs, cell.execution_count = list(outputs), 1
    return cell


def _write(path: Path, cells) -> Path:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def _make_course(root: Path) -> Path:
    """A teacher's repository in miniature: notebooks/, tests/ and a package folder."""
    (root / "notebooks").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pkg").mkdir()
    (root / "pkg" / "_tool.py").write_text('"""A hand-written module, shipped as is."""\n')
    (root / "pkg" / "__init__.py").write_text("from .demo import square\n")  # hand-written too
    (root / "tests" / "test_demo.py").write_text(
        "from tinylm_core.demo import square\n\n\ndef test_square():\n    assert square(5) == 25\n"
    )
    leaky = new_output("stream", name="stdout", text="    return x * x  # SECRET_SQUARE\n")
    _write(
        root / "notebooks" / "01_demo.ipynb",
        [
            _cell("markdown", "# A demo lesson", "intro"),
            _cell("code", "#| default_exp demo", "setup"),
            _cell("code", "print('lesson')", "lesson", [new_output("stream", text="lesson\n")]),
            _cell("markdown", "### Exercise 1.1: Squares (2 points)\nWrite `square`.", "ex11"),
            _cell("code", SQUARE, "square", [leaky]),
            _cell("code", "assert square(3) == 9\nprint(square(4))", "square-check",
                  [new_output("stream", text="16\n")]),
            _cell("markdown", "### Exercise 1.2: Greeting", "ex12"),
            _cell("code", GREET, "greet"),
            _cell("code", GREET_CHECK, "greet-check"),
            _cell("markdown", "## Summary", "summary"),
            _cell("code", "print('done')", "done", [new_output("stream", text="done\n")]),
        ],
    )  # fmt: skip
    _write(
        root / "notebooks" / "02_more.ipynb",
        [
            _cell("markdown", "### Exercise 2.1: Sum of squares", "ex21"),
            _cell("code", SUM, "sum"),
            _cell("code", "assert sum_squares(3) == 5", "sum-check"),
            _cell("markdown", "### Exercise 2.2: Cubes", "ex22"),
            _cell("code", CUBE, "cube"),
            _cell("code", "assert cube(2) == 8", "cube-check"),
        ],
    )
    return root


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The teacher's course and its student edition (built once for the module)."""
    root = _make_course(tmp_path_factory.mktemp("course"))
    student = root / "build" / "student"
    build_student(root / "notebooks", student, root / "pkg")
    return root, student


def _grade(root: Path, work: Path, name: str) -> dict:
    return grade_student(
        work,
        notebook_dir=root / "notebooks",
        tests_dir=root / "tests",
        out=root / "grades",
        timeout=TIMEOUT,
        name=name,
        package_dir=root / "pkg",
    )


def _statuses(report: dict) -> dict[str, tuple[str, int]]:
    return {g["exercise"]: (g["status"], g["points"]) for g in report["exercises"]}


# --- the student edition ---------------------------------------------------------------------------


def test_student_edition_has_no_solution_text_anywhere(course):
    root, student = course
    for path in student.rglob("*"):
        if path.is_file():
            assert b"SECRET_" not in path.read_bytes(), f"solution text leaked into {path}"
            assert b"BEGIN SOLUTION" not in path.read_bytes(), path
    assert _classroom.find_leaks(student, {"return x * x  # SECRET_SQUARE"}) == []


def test_student_edition_is_the_teacher_version_with_stubs(course):
    root, student = course
    for name in ("01_demo.ipynb", "02_more.ipynb"):
        teacher = nbformat.read(root / "notebooks" / name, 4)
        copy = nbformat.read(student / "notebooks" / name, 4)
        assert [c.id for c in copy.cells] == [c.id for c in teacher.cells]
        exercise_cells = {c for e in find_exercises(teacher, name) for c in e.cells}
        for mine, theirs in zip(copy.cells, teacher.cells):
            if mine.id not in exercise_cells:  # the lesson itself is untouched, outputs included
                assert mine == theirs
            else:
                assert mine.get("outputs", []) == [], f"{name} {mine.id}: outputs not cleared"
    cells = {
        c.id: c.source for c in nbformat.read(student / "notebooks" / "01_demo.ipynb", 4).cells
    }
    assert cells["square"] == (
        '#| export\ndef square(x):\n    """x times x."""\n'
        '    raise NotImplementedError("Exercise 1.1: Squares")'
    )
    assert cells["greet-check"] == "assert greet('ada') == 'hello ada', 'greet should say hello'"


def test_student_package_is_exported_from_the_stubs(course):
    root, student = course
    package = student / "tinylm_core"
    assert (package / "_tool.py").read_text() == (root / "pkg" / "_tool.py").read_text()
    namespace: dict = {}
    exec((package / "demo.py").read_text(), namespace)
    with pytest.raises(NotImplementedError, match=r"Exercise 1\.1: Squares"):
        namespace["square"](3)
    assert "from .demo import square" in (package / "__init__.py").read_text()
    assert (student / "README.md").exists()
    assert (student / "data" / "tinyshakespeare.txt").read_bytes() == (
        ROOT / "data" / "tinyshakespeare.txt"
    ).read_bytes()  # the lessons read the course's data offline


def test_secret_lines_are_those_only_a_solution_shows(tmp_path):
    root = _make_course(tmp_path)
    path = root / "notebooks" / "02_more.ipynb"
    nb = nbformat.read(path, 4)
    nb.cells.insert(
        0, _cell("code", "print(total)\nreturn x**3  # SECRET_CUBE, shown in a lesson", "x")
    )
    nbformat.write(nb, path)
    secrets = _classroom.secret_lines(sorted((root / "notebooks").glob("*.ipynb")))
    assert secrets == {
        "return x * x  # SECRET_SQUARE", "return f'hello {name}'  # SECRET_GREET",
        "assert greet('bob') == 'hello bob', 'hidden: SECRET_HIDDEN'",
        "total = sum(square(i) for i in range(n))  # SECRET_SUM",
        "return total",
    }  # fmt: skip


def test_leaking_output_outside_an_exercise_is_refused(tmp_path):
    root = _make_course(tmp_path)
    path = root / "notebooks" / "01_demo.ipynb"
    nb = nbformat.read(path, 4)
    nb.cells[-1].outputs = [
        new_output("stream", text="total = sum(square(i) for i in range(n))  # SECRET_SUM\n")
    ]
    nbformat.write(nb, path)
    with pytest.raises(ClassroomError, match="would leak") as info:
        build_student(root / "notebooks", root / "student", root / "pkg")
    assert "01_demo.ipynb" in str(info.value)


def test_student_edition_never_overwrites_a_foreign_folder(tmp_path):
    root = _make_course(tmp_path)
    (root / "mine").mkdir()
    (root / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ClassroomError, match="not written by this tool"):
        build_student(root / "notebooks", root / "mine", root / "pkg")
    assert (root / "mine" / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize(
    "cells, message",
    [
        ([("markdown", "### Exercise 1.1: x"), ("code", "### BEGIN SOLUTION\nx = 1")], "never closed"),
        ([("markdown", "### Exercise 1.1: x"), ("code", "x = 1\n### END SOLUTION")], "no matching"),
        ([("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION")], "outside any exercise"),
        ([("markdown", "### Exercise 2.1: x"), ("code", "### BEGIN SOLUTION\n### END SOLUTION")], "number it 'Exercise 1.1'"),
        ([("markdown", "### Exercise 1.1: x"), ("code", "assert True")], "no '### BEGIN SOLUTION'"),
        ([("markdown", "### Exercise 1.1: a\n### BEGIN SOLUTION\nyes\n### END SOLUTION")], "markdown cell"),
        (
            [("markdown", "### Exercise 1.1: x"), ("code", "### BEGIN SOLUTION\n### END SOLUTION"),
             ("markdown", "### Exercise 1.1: y"), ("code", "### BEGIN SOLUTION\n### END SOLUTION")],
            "used twice",
        ),
        (
            [("markdown", "### Exercise 1.1: x"), ("code", "### BEGIN SOLUTION\n### END SOLUTION"),
             ("markdown", "## Next section"), ("code", "### BEGIN SOLUTION\n### END SOLUTION")],
            "outside any exercise",
        ),
        (
            [("markdown", "### Exercise 1.1: x (3 points)"), ("code", "### BEGIN SOLUTION\n### END SOLUTION"),
             ("code", "# Check: one (1 point)\nassert 1"), ("code", "# Check: two (1 point)\nassert 1")],
            "says 3 points but its checks add up to 2",
        ),
        (
            [("markdown", "### Exercise 1.1: x"), ("code", "### BEGIN SOLUTION\n### END SOLUTION"),
             ("code", "# Check: one (1 point)\nassert 1"), ("code", "assert 1")],
            "has no '# Check: what",
        ),
    ],
)  # fmt: skip
def test_bad_exercise_markup_is_refused_with_the_place(cells, message):
    nb = new_notebook(
        cells=[_cell(kind, source, f"c{i}") for i, (kind, source) in enumerate(cells)]
    )
    with pytest.raises(ClassroomError, match=message) as info:
        find_exercises(nb, "01_lesson.ipynb")
    assert "01_lesson.ipynb" in str(info.value)


def test_exercise_rules(tmp_path):
    nb = nbformat.read(_make_course(tmp_path) / "notebooks" / "01_demo.ipynb", 4)
    first, second = find_exercises(nb, "01_demo.ipynb")
    assert (first.id, first.title, first.points, first.module) == ("1.1", "Squares", 2, "demo")
    assert first.answer_cells == ["square"] and first.check_cells == ["square-check"]
    assert (second.id, second.points, second.module, second.cells) == (
        "1.2",
        1,
        None,
        ["greet", "greet-check"],
    )  # and the "## Summary" heading ended it: the last code cell is lesson, not check


def test_lesson_notebooks_have_valid_exercise_markup():
    """The real lessons: every exercise added to them must follow the convention."""
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        find_exercises(nbformat.read(path, 4), path.name)


# --- grading --------------------------------------------------------------------------------------


def test_grading_the_teacher_version_scores_full_marks(course):
    root, _ = course
    report = _grade(root, root / "notebooks", "teacher")
    assert _statuses(report) == {
        "1.1": ("passed", 2), "1.2": ("passed", 1), "2.1": ("passed", 1), "2.2": ("passed", 1)
    }  # fmt: skip
    assert (report["score"], report["max_score"], report["percent"]) == (5, 5, 100.0)


def test_grading_the_untouched_student_edition_scores_zero_without_errors(course):
    root, student = course
    report = _grade(root, student, "untouched")
    assert {g["status"] for g in report["exercises"]} == {"not attempted"}
    assert all(g["message"] == "" for g in report["exercises"])
    assert report["score"] == 0 and report["max_score"] == 5
    assert all(
        info == {"handed_in": True, "exercises": 2, "ran": False}
        for info in report["notebooks"].values()
    )  # nothing to run: no kernel started


def _hand_in(student: Path, work: Path, answers: dict[str, dict[str, str]]) -> Path:
    """A copy of the student edition with some cells' sources replaced (by cell id)."""
    shutil.copytree(student, work)
    for name, sources in answers.items():
        path = work / "notebooks" / name
        nb = nbformat.read(path, 4)
        for cell in nb.cells:
            cell.source = sources.get(cell.id, cell.source)
        nbformat.write(nb, path)
    return work


def test_partial_work_gets_partial_credit_and_an_infinite_loop_is_cut(course, capsys):
    root, student = course
    answers = {
        "01_demo.ipynb": {
            "square": SQUARE.replace("SECRET", "MY"),  # right (and graded by the package test)
            "greet": "def greet(name):\n    return 'hello ada'",  # fools the visible check only
            "greet-check": "pass  # a student who deletes the check gains nothing",
        },
        "02_more.ipynb": {"sum": "def sum_squares(n):\n    while True:\n        pass"},
    }  # and 2.2 is left as it was
    work = _hand_in(student, root / "alice", answers)
    assert _classroom.main(
        ["grade", str(work), "--notebooks", str(root / "notebooks"), "--tests",
         str(root / "tests"), "--out", str(root / "grades"), "--timeout", str(TIMEOUT),
         "--package", str(root / "pkg")]
    ) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "alice: 2/5 (40%)" in printed and "Exercise 2.1" in printed
    report = json.loads((root / "grades" / "alice" / "report.json").read_text())
    grades = {g["exercise"]: g for g in report["exercises"]}
    assert _statuses(report) == {
        "1.1": ("passed", 2), "1.2": ("failed", 0), "2.1": ("failed", 0), "2.2": ("not attempted", 0)
    }  # fmt: skip
    assert grades["1.2"]["message"] == "cell 9: AssertionError: hidden: SECRET_HIDDEN"
    assert grades["2.1"]["message"] == "cell 3: timed out after 5 s (an infinite loop?)"
    assert grades["2.2"]["message"] == "", "the loop was cut and the notebook went on"
    with (root / "grades" / "gradebook.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["student"] == "alice"]
    assert [(r["exercise"], r["status"], r["points"]) for r in rows] == [
        ("1.1", "passed", "2"), ("1.2", "failed", "0"), ("2.1", "failed", "0"),
        ("2.2", "not attempted", "0"),
    ]  # fmt: skip


def test_a_crash_and_a_wrong_exported_answer_are_reported_not_fatal(course):
    root, student = course
    answers = {
        "01_demo.ipynb": {  # right for 3 and 4 (the notebook's checks), wrong for 5 (the package's)
            "square": "#| export\ndef square(x):\n    return {3: 9, 4: 16}.get(x, 0)",
            "greet": "import os\n\nos._exit(1)",  # kills the kernel
        }
    }
    work = _hand_in(student, root / "bob", answers)
    (work / "notebooks" / "02_more.ipynb").unlink()  # not handed in
    report = _grade(root, work, "bob")
    grades = {g["exercise"]: g for g in report["exercises"]}
    assert grades["1.1"]["status"] == "failed"
    assert grades["1.1"]["message"] == "package tests failed: test_square: assert 0 == 25"
    assert grades["1.2"]["status"] == "failed"
    assert grades["1.2"]["message"] == "cell 8: the kernel died (a crash?)"
    assert grades["2.1"]["message"] == "notebook not handed in"
    assert report["notebooks"]["02_more.ipynb"]["handed_in"] is False
    assert (root / "grades" / "bob" / "data" / "gpt2" / "vocab.bpe").is_file()  # data/ for lessons
    executed = nbformat.read(root / "grades" / "bob" / "notebooks" / "01_demo.ipynb", 4)
    assert executed.cells[-1].execution_count is None, "cells after a crash are not run"


def test_gradebook_keeps_one_row_per_student_and_exercise(tmp_path):
    def report(student, status):
        row = dict(notebook="01_demo.ipynb", title="t", points=0, max_points=1, message="")
        return {"student": student, "exercises": [
            {**row, "student": student, "exercise": e, "status": status} for e in ("1.1", "1.2")
        ]}  # fmt: skip

    book = tmp_path / "gradebook.csv"
    _classroom.update_gradebook(book, [report("ada", "failed"), report("bob", "failed")])
    _classroom.update_gradebook(book, [report("ada", "passed")])  # ada graded again
    with book.open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["student"], r["exercise"], r["status"]) for r in rows] == [
        ("bob", "1.1", "failed"), ("bob", "1.2", "failed"),
        ("ada", "1.1", "passed"), ("ada", "1.2", "passed"),
    ]  # fmt: skip


def test_every_lesson_has_exercises_and_its_student_edition_leaks_no_solution(tmp_path):
    """The real course: build_student refuses (ClassroomError) if any solution line would leak."""
    out = tmp_path / "student"
    exercises = build_student(out=out)
    for name, found in exercises.items():
        assert 2 <= len(found) <= 4, f"{name} has {len(found)} exercises; each lesson ends with 2-4"
    for notebook in (out / "notebooks").glob("*.ipynb"):
        assert "BEGIN SOLUTION" not in notebook.read_text(encoding="utf-8"), notebook.name

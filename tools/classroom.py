"""Classroom tooling: a student edition of the course without solutions, and an autograder.

This file is written by hand (it is a tool, not a lesson), like `tools/export.py`, on which it builds.
The exercise convention (nbgrader's markers, so teachers who use nbgrader can take the notebooks):

    ### Exercise 3.2: A minimum merge frequency (2 points)     <- a markdown heading opens an exercise
    (prose, hints...)
    def train(...):                                            <- code cell: the student's answer cell
        ### BEGIN SOLUTION
        ...the reference solution...
        ### END SOLUTION
    # Check: stops at min_freq (1 point)                       <- code cell: a check (points optional)
    assert train(...) == ...

- An exercise is a markdown cell whose first line is a heading `Exercise N.M: title`, where N is the
  notebook's number, optionally ending in `(K points)` (default 1 point). It runs until the next
  markdown heading of the same or a higher level (`##` ends a `###` exercise).
- Its code cells holding a `### BEGIN SOLUTION` ... `### END SOLUTION` region are its answer cells;
  its other code cells are its checks (ordinary `assert`s). In the student edition each region becomes
  `raise NotImplementedError("Exercise N.M: title")` at the marker's indentation. Regions between
  `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS` in a check cell are removed from the student
  edition and put back when grading.
- Points per check: when every check cell starts with `# Check: what (K points)` (inside a hidden
  region for a cell that is all hidden), each check earns its own points; otherwise the exercise's
  points go to all its checks together.
- A markdown cell of an exercise starting with `**Your answer:**` is a free-text answer: a model
  answer between solution markers is replaced by a placeholder, and grading collects what each
  student wrote into `answers/exercise_N.M.md`.
- An answer cell may be an `#| export` cell: grading also runs that module's package tests
  (`tests/test_<module>.py`, or the node ids of a `#| tests tests/test_x.py::test_y` line).
- The build edition (`--edition build`, tools/classroom_build.py) also turns the exported pieces
  listed in tools/build_edition.json into exercises, graded by hidden pytest checks.

    python tools/classroom.py check                          # validate the exercises in notebooks/
    python tools/classroom.py student [--edition build]      # build/student/ (`make student`)
    python tools/classroom.py grade class/* --jobs 2 --only 01,02   # (`make grade`)

Grading runs a copy of each student's notebooks in a fresh kernel, cell by cell (a per-cell timeout
interrupts infinite loops; a crashed kernel is reported), with the check cells taken from the
teacher's notebook (matched by cell id) and with the student's own package (exported from their
notebooks) first on PYTHONPATH. See TEACHING.md.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python tools/classroom.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nbformat  # noqa: E402

from tools import classroom_build as _build  # noqa: E402
from tools import export as _export  # noqa: E402
from tools.classroom_build import build_package  # noqa: E402, F401
from tools.classroom_grade import (  # noqa: E402
    NOT_ATTEMPTED,
    PLUGIN_DIR,
    _rows,
    answer_text,
    grade_exercise,
    grade_pieces,
    run_notebook,
    run_package_checks,
    summarize,
)
from tools.classroom_markup import (  # noqa: E402, F401
    ClassroomError,
    Exercise,
    find_exercises,
    find_leaks,
    read_notebook,
    secret_lines,
    student_notebook,
)
from tools.classroom_report import (  # noqa: E402, F401
    format_report,
    markdown_report,
    summary_table,
    update_gradebook,
    write_answers,
)

ROOT = _export.ROOT
TESTS_DIR = ROOT / "tests"
BUILD_DIR = ROOT / "build"
DATA_DIR = ROOT / "data"
STUDENT_MARKER = ".tinylm-student"  # a folder holding it may be replaced by a new student edition
GRADES_MARKER = ".tinylm-grades"
COPY_IGNORE = shutil.ignore_patterns(
    ".ipynb_checkpoints", "__pycache__", ".venv", ".git", "runs", "outputs"
)
STUDENT_README = """\
# tinylm, student edition

The lesson notebooks are in `notebooks/`. Where a notebook says `Exercise N.M`, a cell raises
`NotImplementedError("Exercise N.M: ...")`: replace that line with your answer, keep the cell where it
is, and run the check cells below it. An answer in an `#| export` cell becomes part of the package
`tinylm_core/` once you run `.venv/bin/python tools/export.py`, and later lessons import it from there.

Set up once in this folder: `python -m venv .venv && .venv/bin/pip install -e ".[dev]"`, then
`.venv/bin/jupyter lab notebooks/`. Hand in this whole folder.
"""
BUILD_README = """
## The build edition

You also write the package itself: functions and methods whose body is
`raise NotImplementedError("TODO(build NN): ...")`. Their docstring says what to write. Write the
body in the notebook, run the checks below it, then `.venv/bin/python tools/export.py` so that later
lessons use your code. Until you do, a later lesson that imports such a piece from `tinylm_core` runs
the teacher's reference instead and warns you (it ships compiled, for Python {python}); the grader
gives no points for a piece that is still a stub.
"""


def _fresh_folder(folder: Path, marker: str) -> None:
    """Empty `folder` for new output, refusing to delete a folder this tool did not write."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / marker).exists():
            raise ClassroomError(
                f"{folder} exists and was not written by this tool; choose another --out "
                "or remove it yourself"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / marker).write_text("written by python tools/classroom.py\n")


def build_student(
    notebook_dir: Path = _export.NOTEBOOK_DIR,
    out: Path = BUILD_DIR / "student",
    package_dir: Path = _export.PACKAGE_DIR,
    pieces: dict[str, list] | None = None,
) -> dict[str, list[Exercise]]:
    """Write the student edition to `out`: notebooks/, tinylm_core/, data/, pyproject.toml, README.md.

    With `pieces` (lesson -> build pieces, from `load_config`) it is the build edition. Returns the
    exercises of each notebook. Raises ClassroomError if any solution or hidden-test text would leak.
    """
    teacher = sorted(notebook_dir.glob(_export.NOTEBOOK_GLOB))
    if not teacher:
        raise ClassroomError(f"no notebooks matching {_export.NOTEBOOK_GLOB} in {notebook_dir}")
    exercises = {path.name: find_exercises(read_notebook(path), path.name) for path in teacher}
    _fresh_folder(out, STUDENT_MARKER)
    (out / "notebooks").mkdir()
    hidden, compiled = {}, {}
    for path in teacher:
        nb = student_notebook(read_notebook(path), path.name)
        lesson_pieces = (pieces or {}).get(path.name[:2], [])
        if lesson_pieces:
            nb, lines = _build.build_notebook(nb, path.name, lesson_pieces)
            hidden.update(lines)
            compiled.update(_build.reference_code(read_notebook(path), lesson_pieces))
        nbformat.write(nb, out / "notebooks" / path.name)
    unknown = set(pieces or {}) - {path.name[:2] for path in teacher}
    if unknown:
        raise ClassroomError(f"the build config names lessons with no notebook: {sorted(unknown)}")
    build_package(
        sorted((out / "notebooks").glob(_export.NOTEBOOK_GLOB)), out / "tinylm_core", package_dir
    )
    readme = STUDENT_README
    if pieces:
        _build.add_fallback(out / "tinylm_core", compiled)
        readme += BUILD_README.format(python=".".join(map(str, sys.version_info[:2])))
    for extra in ("pyproject.toml", "LICENSE", "tools/export.py", "tools/__init__.py"):
        if (ROOT / extra).exists():
            (out / extra).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / extra, out / extra)
    if DATA_DIR.is_dir():  # the course's corpus and vocabularies: the lessons read them offline
        shutil.copytree(DATA_DIR, out / "data")
    (out / "README.md").write_text(readme, encoding="utf-8")
    # Text shipped from outside the notebooks (hand-written modules, pyproject.toml) is public;
    # the generated modules are not, since they come from the student notebooks being checked.
    shipped = [
        text
        for path in out.rglob("*")
        if path.is_file() and path.suffix in {".py", ".toml", ".md", ""}
        and path.name != "__init__.py"
        for text in [path.read_text(encoding="utf-8")]
        if not _export.HEADER_RE.match(text)
    ]  # fmt: skip
    tests = [p.read_text(encoding="utf-8") for p in _build.hidden_files(pieces or {})]
    leaks = find_leaks(out, secret_lines(teacher, shipped, hidden, tests))
    if leaks:
        raise ClassroomError(
            "solution text would leak into the student edition:\n" + "\n".join(leaks)
        )
    return exercises


def _prepare(work: Path, teacher: list[Path], pieces: dict) -> list[tuple]:
    """Copy check cells from the teacher, put the reference in for stubbed pieces; the plan."""
    plan = []
    for path in teacher:
        teacher_nb = read_notebook(path)
        exercises = find_exercises(teacher_nb, path.name)
        lesson_pieces = pieces.get(path.name[:2], [])
        target = work / "notebooks" / path.name
        missing = "" if target.exists() else "notebook not handed in"
        try:
            nb = None if missing else read_notebook(target)
        except ClassroomError as e:
            nb, missing = None, f"notebook cannot be read: {e}"
        if nb is None:  # what the student was given, so that later lessons find its modules
            working = student_notebook(teacher_nb, path.name)
            if lesson_pieces:
                working = _build.build_notebook(working, path.name, lesson_pieces)[0]
        else:
            checks = {c for e in exercises for c in e.check_cells}
            originals = {c.get("id"): c.source for c in teacher_nb.cells}
            for cell in nb.cells:
                if cell.get("id") in checks:
                    cell.source = originals[cell.id]
            working = nb
        statuses = {p.name: _build.piece_status(working, p) for p in lesson_pieces}
        for piece in lesson_pieces:
            if statuses[piece.name] != _build.WRITTEN:
                _build.fall_back(working, teacher_nb, piece)
        nbformat.write(working, target)
        plan.append((path, exercises, nb, missing, lesson_pieces, statuses))
    return plan


def grade_student(
    student: Path,
    notebook_dir: Path = _export.NOTEBOOK_DIR,
    tests_dir: Path = TESTS_DIR,
    out: Path = BUILD_DIR / "grades",
    timeout: float = 120.0,
    test_mode: bool = True,
    name: str | None = None,
    package_dir: Path = _export.PACKAGE_DIR,
    pieces: dict[str, list] | None = None,
    only: tuple[str, ...] = (),
) -> dict:
    """Grade the work in `student` (a folder holding notebooks/, or the notebooks themselves).

    Everything runs on a copy in `out/<name>/` (the executed notebooks stay there for the teacher to
    read); `report.json` and `report.md` are written there. `pieces` grades the build edition's
    pieces too; `only` ("01", "02") grades those lessons. Returns the report.
    """
    student = Path(student)
    name = name or student.resolve().name
    source = student / "notebooks" if (student / "notebooks").is_dir() else student
    if not source.is_dir():
        raise ClassroomError(f"{student} is not a folder; pass the folder with the student's work")
    teacher = sorted(notebook_dir.glob(_export.NOTEBOOK_GLOB))
    work = out / name
    _fresh_folder(work, GRADES_MARKER)
    shutil.copytree(source, work / "notebooks", ignore=COPY_IGNORE)
    if DATA_DIR.is_dir():  # the lessons read data/ next to the package (tinylm_core.downloads)
        (work / "data").symlink_to(DATA_DIR, target_is_directory=True)
    pieces = pieces or {}
    plan = _prepare(work, teacher, pieces)
    # The student's package is exported from their notebooks, never taken from the folder as is;
    # a notebook that cannot be exported is replaced by the teacher's for the package.
    failures = build_package(
        [work / "notebooks" / p.name for p in teacher],
        work / "tinylm_core",
        package_dir,
        substitutes={p.name: p for p in teacher},
    )
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    # the student's package first; then the guard the kernel and pytest load (tinylm_guard)
    paths = [str(work), str(PLUGIN_DIR), os.environ.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    env.pop("TINYLM_TEST_MODE", None)
    if test_mode:
        env["TINYLM_TEST_MODE"] = "1"

    rows, notebooks, answers, tampering, fallbacks, package_runs = [], {}, {}, [], [], {}
    graded = [p.name for p, *_ in plan if not only or p.name[:2] in only]
    for path, exercises, nb, missing, lesson_pieces, statuses in plan:
        if path.name not in graded:
            continue
        info = {"handed_in": nb is not None, "exercises": len(exercises), "ran": False}
        notebooks[path.name] = info
        if path.name in failures:
            info["problem"] = f"export failed: {failures[path.name].splitlines()[0]}"
        cells = {c.get("id"): c for c in nb.cells} if nb is not None else {}
        prompts = {c.get("id"): c.source for c in read_notebook(path).cells}
        attempted = [
            e
            for e in exercises
            if nb is not None and grade_exercise(e, cells, {}, "")[0][1] != NOT_ATTEMPTED
        ]
        results = {}
        if attempted:  # a notebook whose answers are all still stubs has nothing to run
            start = time.perf_counter()
            guarded = {c for e in attempted for c in e.check_cells}
            try:
                results, found = run_notebook(nb, work / "notebooks", env, timeout, guarded)
                tampering += [f"{path.name}, {item}" for item in found]
            except Exception as e:  # a kernel that cannot start must not stop the other notebooks
                info["problem"] = f"could not run: {type(e).__name__}: {e}"
            info.update(ran=True, seconds=round(time.perf_counter() - start, 1))
            nbformat.write(nb, work / "notebooks" / path.name)
        for exercise in exercises:
            failure = ""
            if exercise in attempted and exercise.module:
                targets = tuple(_package_tests(exercise, tests_dir))
                if targets and targets not in package_runs:
                    checked = run_package_checks(list(targets), work, env, timeout)
                    bad = [m for ok, m in checked.values() if not ok]
                    package_runs[targets] = f"package tests failed: {bad[0]}" if bad else ""
                failure = package_runs.get(targets, "")
                if path.name in failures:
                    failure = info["problem"]
            checks = grade_exercise(exercise, cells, results, failure)
            if nb is None:
                checks = [(c[0], NOT_ATTEMPTED, 0, c[3], missing) for c in checks]
            rows += _rows(name, path.name, exercise.id, exercise.title, checks)
            for cell_id in exercise.text_cells if nb is not None else []:
                prompt = prompts[cell_id].splitlines()[0]
                text = answer_text(cells[cell_id].source, prompt) if cell_id in cells else ""
                answers[exercise.id] = "\n\n".join(filter(None, [answers.get(exercise.id), text]))

        def checks_of_lesson(targets):
            return run_package_checks(targets, work, env, timeout)

        for piece, checks in grade_pieces(
            lesson_pieces, statuses, failures.get(path.name, ""), checks_of_lesson
        ):
            rows += _rows(name, path.name, f"build {piece.name}", piece.what, checks)
            if statuses[piece.name] != _build.WRITTEN:
                fallbacks.append(f"{path.name[:2]} {piece.name}")
    exercises = summarize(rows)
    score = sum(r["points"] for r in rows)
    total = sum(r["max_points"] for r in rows)
    report = {
        "student": name, "score": score, "max_score": total,
        "percent": round(100 * score / total, 1) if total else 0.0,
        "test_mode": test_mode, "edition": "build" if pieces else "regular",
        "cell_timeout_s": timeout, "graded": graded,
        "graded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "notebooks": notebooks, "exercises": exercises, "checks": rows,
        "fallbacks": fallbacks, "tampering": tampering, "answers": answers,
    }  # fmt: skip
    (work / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (work / "report.md").write_text(markdown_report(report), encoding="utf-8")
    return report


def _package_tests(exercise: Exercise, tests_dir: Path) -> list[str]:
    """The pytest targets that grade an exported answer, as absolute paths (may be empty)."""
    if exercise.tests:
        return [str(tests_dir.parent / target) for target in exercise.tests]
    default = tests_dir / f"test_{exercise.module}.py"
    return [str(default)] if default.exists() else []


def main(argv: list[str] | None = None) -> int:
    """The command line (tools/classroom_cli.py)."""
    from tools.classroom_cli import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main())

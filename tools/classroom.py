"""Classroom tooling: a student edition of the course without solutions, and an autograder.

This file is written by hand (it is a tool, not a lesson), like `tools/export.py`, on which it builds.

The exercise convention (nbgrader's markers, so teachers who use nbgrader can take the notebooks):

    ### Exercise 3.2: A minimum merge frequency (2 points)     <- a markdown heading opens an exercise
    (prose, hints...)
    def train(...):                                            <- code cell: the student's answer cell
        ### BEGIN SOLUTION
        ...the reference solution...
        ### END SOLUTION
    assert train(...) == ...                                   <- code cell: a check

- An exercise is a markdown cell whose first line is a heading `Exercise N.M: title`, where N is the
  notebook's number, optionally ending in `(K points)` (default 1 point). It runs until the next
  markdown heading of the same or a higher level (`##` ends a `###` exercise).
- Its code cells holding a `### BEGIN SOLUTION` ... `### END SOLUTION` region are its answer cells;
  its other code cells are its checks (ordinary `assert`s). In the student edition each region becomes
  `raise NotImplementedError("Exercise N.M: title")` at the marker's indentation. Regions between
  `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS` in a check cell are removed from the student
  edition and put back when grading.
- An answer cell may be an `#| export` cell: the student edition's package is exported from the student
  notebooks (by `_export`), so it holds the stub too, and grading also runs that module's package tests
  (`tests/test_<module>.py`, or the node ids named in a `#| tests tests/test_x.py::test_y` line at the
  top of the answer cell).

    python tools/classroom.py check                 # validate the exercises in notebooks/
    python tools/classroom.py student               # build/student/ (what `make student` runs)
    python tools/classroom.py grade build/alice     # grade one student's work (`make grade`)

Grading runs a copy of each student notebook that has exercises, in a fresh kernel, cell by cell (a
per-cell timeout interrupts infinite loops; a crashed kernel is reported), with the check cells taken
from the teacher's notebook (matched by cell id, so editing an assert does not change a grade), and
with the student's own package (exported from their notebooks) first on PYTHONPATH. An exercise is
"not attempted" while an answer cell still holds its stub, "passed" when all its cells run without an
error (and its package tests pass), else "failed" with the first error message.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

try:
    from . import export as _export  # imported as tools.classroom (the tests)
except ImportError:
    import export as _export  # run as `python tools/classroom.py`

ROOT = _export.ROOT
TESTS_DIR = ROOT / "tests"
BUILD_DIR = ROOT / "build"
HEADING_RE = re.compile(r"^(#{1,6})\s")
EXERCISE_RE = re.compile(
    r"^(#{1,6})\s*Exercise\s+(\d+)\.(\d+)\s*[:.\-\u2013\u2014]?\s*(.*?)\s*(?:\((\d+)\s*points?\))?\s*$",
    re.IGNORECASE,
)
MARKERS = {
    "### BEGIN SOLUTION": "### END SOLUTION",
    "### BEGIN HIDDEN TESTS": "### END HIDDEN TESTS",
}
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


class ClassroomError(ValueError):
    """Exercise markup or a folder cannot be used; the message names the place and the fix."""


@dataclass
class Exercise:
    id: str  # "3.2"
    title: str
    points: int
    notebook: str  # file name, e.g. 03_char_tokenizer.ipynb
    cells: list[str] = field(default_factory=list)  # ids of its code cells, in order
    answer_cells: list[str] = field(default_factory=list)  # those holding a solution region
    module: str | None = None  # set when an answer cell is exported
    tests: list[str] = field(default_factory=list)  # pytest targets for an exported answer

    @property
    def check_cells(self) -> list[str]:
        return [c for c in self.cells if c not in self.answer_cells]

    @property
    def stub(self) -> str:
        return f"NotImplementedError({json.dumps(f'Exercise {self.id}: {self.title}')})"


# --- reading the exercises of a teacher notebook ------------------------------------------------


def read_notebook(path: Path) -> nbformat.NotebookNode:
    try:
        return nbformat.read(path, as_version=4)
    except Exception as e:  # nbformat raises several types for unreadable files
        raise ClassroomError(f"{path}: cannot be read as a notebook ({e})") from e


def _regions(source: str, where: str) -> list[tuple[int, int, str]]:
    """(begin line, end line, begin marker) of each marked region in a cell's source."""
    regions, open_at, open_marker = [], None, None
    lines = source.splitlines()
    for number, line in enumerate(lines):
        text = line.strip()
        if text in MARKERS:
            if open_marker is not None:
                raise ClassroomError(
                    f"{where}: '{text}' on line {number + 1} inside an open '{open_marker}'; "
                    f"close it with '{MARKERS[open_marker]}' first"
                )
            open_at, open_marker = number, text
        elif text in MARKERS.values():
            if open_marker is None or MARKERS[open_marker] != text:
                raise ClassroomError(
                    f"{where}: '{text}' on line {number + 1} has no matching BEGIN line above it"
                )
            regions.append((open_at, number, open_marker))
            open_at, open_marker = None, None
    if open_marker is not None:
        raise ClassroomError(
            f"{where}: '{open_marker}' on line {open_at + 1} is never closed; "
            f"add '{MARKERS[open_marker]}' below the solution"
        )
    return regions


def find_exercises(nb: nbformat.NotebookNode, name: str) -> list[Exercise]:
    """The exercises of one notebook, in order; raises ClassroomError on inconsistent markup."""
    number = int(name[:2]) if name[:2].isdigit() else None
    exercises: list[Exercise] = []
    current, level, default_exp = None, 0, None
    for index, cell in enumerate(nb.cells, start=1):
        where = f"{name}, cell {index}"
        if cell.cell_type == "markdown":
            first = cell.source.lstrip().split("\n", 1)[0]
            heading = HEADING_RE.match(first)
            match = EXERCISE_RE.match(first)
            if match:
                hashes, major, minor, title, points = match.groups()
                if number is not None and int(major) != number:
                    raise ClassroomError(
                        f"{where}: 'Exercise {major}.{minor}' in notebook {number:02d}; "
                        f"number it 'Exercise {number}.{minor}'"
                    )
                ident = f"{int(major)}.{int(minor)}"
                if any(e.id == ident for e in exercises):
                    raise ClassroomError(f"{where}: 'Exercise {ident}' is used twice; renumber one")
                current = Exercise(ident, title or f"exercise {ident}", int(points or 1), name)
                level = len(hashes)
                exercises.append(current)
            elif heading and current is not None and len(heading.group(1)) <= level:
                current = None
            if _regions(cell.source, where):
                raise ClassroomError(
                    f"{where}: solution markers in a markdown cell; only code cells are graded, "
                    "so put the answer in a code cell"
                )
            continue
        if cell.cell_type != "code":
            continue
        if "id" not in cell:
            raise ClassroomError(
                f"{name}: cells have no ids (nbformat < 4.5); open and save it in JupyterLab "
                "or run `jupyter nbconvert --to notebook --inplace` on it"
            )
        directives = _export_directives(cell.source)
        default_exp = directives.get("default_exp", default_exp)
        regions = _regions(cell.source, where)
        solutions = [r for r in regions if r[2] == "### BEGIN SOLUTION"]
        if regions and current is None:
            raise ClassroomError(
                f"{where}: a marked region outside any exercise; put a markdown cell "
                "'### Exercise N.M: title' above it"
            )
        if current is None:
            continue
        if solutions and len(solutions) < len(regions):
            raise ClassroomError(
                f"{where}: hidden tests belong in a check cell, not an answer cell"
            )
        current.cells.append(cell.id)
        if solutions:
            current.answer_cells.append(cell.id)
            if "export" in directives:
                current.module = directives["export"] or default_exp
                current.tests += directives.get("tests", "").split()
    for exercise in exercises:
        if not exercise.answer_cells:
            raise ClassroomError(
                f"{name}: Exercise {exercise.id} has no '### BEGIN SOLUTION' region; add one to "
                "its answer cell (or remove the 'Exercise' heading)"
            )
    return exercises


def _export_directives(source: str) -> dict[str, str]:
    """The `#| name argument` lines at the top of a cell, as the exporter reads them."""
    directives = {}
    for line in source.splitlines():
        match = _export.DIRECTIVE_RE.match(line)
        if not match:
            break
        directives.setdefault(match.group(1), match.group(2))
    return directives


# --- the student edition ------------------------------------------------------------------------


def strip_solutions(source: str, stub: str) -> str:
    """Replace each solution region by `raise <stub>` (same indentation); drop hidden tests."""
    lines = source.splitlines()
    for begin, end, marker in reversed(_regions(source, "cell")):
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        replacement = [f"{indent}raise {stub}"] if marker == "### BEGIN SOLUTION" else []
        lines[begin : end + 1] = replacement
    return "\n".join(lines)


def student_notebook(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The student version of a teacher notebook: stubs for solutions, exercise outputs cleared."""
    student = nbformat.from_dict(json.loads(json.dumps(nb)))  # a deep copy
    by_id = {cell.get("id"): cell for cell in student.cells}
    for exercise in find_exercises(nb, name):
        for cell_id in exercise.cells:
            cell = by_id[cell_id]
            # Outputs of an exercise's cells show what the solution produced: never ship them.
            cell.source = strip_solutions(cell.source, exercise.stub)
            cell.outputs, cell.execution_count = [], None
    return student


def secret_lines(notebooks: list[Path], public_texts: list[str] = ()) -> set[str]:
    """Lines (stripped) that occur only inside solution or hidden-test regions, never elsewhere.

    Used to prove that a student edition leaks nothing: any of these lines found there, as a line
    or inside a longer text (a traceback), is a leak. Lines too short to be told apart from
    ordinary code (`pass`, `)`) are left out.
    """
    secret, public = set(), set()
    for text in public_texts:
        public.update(line.strip() for line in text.splitlines())
    for path in notebooks:
        for cell in read_notebook(path).cells:
            lines = cell.source.splitlines()
            inside = set()
            for begin, end, _ in _regions(cell.source, f"{path.name}"):
                inside.update(range(begin, end + 1))
            for number, line in enumerate(lines):
                (secret if number in inside else public).add(line.strip())
    markers = set(MARKERS) | set(MARKERS.values())
    candidates = {s for s in secret - public - markers if len(s) >= 6 and re.search(r"\w", s)}
    # A line whose text is visible inside a lesson line (`return w @ v` in `return w @ v, w`) is
    # not a secret either.
    visible = "\n".join(public)
    return {s for s in candidates if s not in visible}


def _notebook_texts(nb: nbformat.NotebookNode) -> list[str]:
    """Every piece of text a learner could see in a notebook: sources and outputs."""
    texts = [json.dumps(nb.metadata)]
    for cell in nb.cells:
        texts.append(cell.source)
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts += [str(v) for v in output.get("data", {}).values()]
            texts += [output.get("evalue", "")] + output.get("traceback", [])
    return texts


def find_leaks(folder: Path, secrets: set[str]) -> list[str]:
    """Places in `folder` (notebooks, outputs, package, any text file) where a secret line appears."""
    long_secrets = [s for s in secrets if len(s) >= 16]
    leaks = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            raw = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        texts = _notebook_texts(nbformat.reads(raw, 4)) if path.suffix == ".ipynb" else [raw]
        for text in texts:
            lines = {line.strip() for line in text.splitlines()}
            found = (lines & secrets) or {s for s in long_secrets if s in text}
            leaks += [f"{path.relative_to(folder)}: {line!r}" for line in sorted(found)]
    return leaks


def build_package(notebooks: list[Path], package_dir: Path, handwritten: Path) -> None:
    """Export `notebooks` into a fresh `package_dir`, as `make export` would, plus the hand-written
    modules (`__init__.py`, `__main__.py`) copied from the `handwritten` package folder."""
    modules = _export.collect(notebooks)  # raises ExportError, naming the notebook and cell
    files = {
        name: _export.Module(
            name, f"notebooks/{Path(m.notebook).name}", m.cells, m.cell_numbers
        ).render()
        for name, m in modules.items()
    }
    if package_dir.exists():
        shutil.rmtree(package_dir)
    package_dir.mkdir(parents=True)
    for source in sorted(handwritten.glob("*.py")):
        text = source.read_text(encoding="utf-8")
        if not _export.HEADER_RE.match(text):
            (package_dir / source.name).write_text(text, encoding="utf-8")
    for name, text in files.items():
        (package_dir / f"{name}.py").write_text(text, encoding="utf-8")


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
) -> dict[str, list[Exercise]]:
    """Write the student edition to `out`: notebooks/, tinylm_core/, pyproject.toml, README.md.

    Returns the exercises of each notebook. Raises ClassroomError if any solution text would leak.
    """
    teacher = sorted(notebook_dir.glob(_export.NOTEBOOK_GLOB))
    if not teacher:
        raise ClassroomError(f"no notebooks matching {_export.NOTEBOOK_GLOB} in {notebook_dir}")
    exercises = {path.name: find_exercises(read_notebook(path), path.name) for path in teacher}
    _fresh_folder(out, STUDENT_MARKER)
    (out / "notebooks").mkdir()
    for path in teacher:
        nbformat.write(
            student_notebook(read_notebook(path), path.name), out / "notebooks" / path.name
        )
    build_package(
        sorted((out / "notebooks").glob(_export.NOTEBOOK_GLOB)), out / "tinylm_core", package_dir
    )
    for extra in ("pyproject.toml", "LICENSE", "tools/export.py", "tools/__init__.py"):
        if (ROOT / extra).exists():
            (out / extra).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / extra, out / extra)
    (out / "README.md").write_text(STUDENT_README, encoding="utf-8")
    # Text shipped from outside the notebooks (hand-written modules, pyproject.toml) is public;
    # the generated modules are not, since they come from the student notebooks being checked.
    shipped = [
        text
        for path in out.rglob("*")
        if path.is_file() and path.suffix != ".ipynb" and path.name != "__init__.py"
        for text in [path.read_text(encoding="utf-8")]
        if not _export.HEADER_RE.match(text)
    ]
    leaks = find_leaks(out, secret_lines(teacher, shipped))
    if leaks:
        raise ClassroomError(
            "solution text would leak into the student edition:\n" + "\n".join(leaks)
        )
    return exercises


# --- grading --------------------------------------------------------------------------------------

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
ARROW_RE = re.compile(r"^-*>\s*\d+\s+(.*\S)")  # IPython marks the failing line: "----> 3 assert x"


@dataclass
class CellResult:
    status: str  # "ok", "error", "timeout" or "not run"
    message: str = ""


@dataclass
class Grade:
    """One exercise of one student: a row of the gradebook."""

    student: str
    notebook: str
    exercise: str
    title: str
    status: str
    points: int
    max_points: int
    message: str = ""


def _error_message(reply: dict) -> str:
    """`AssertionError: message`, or the failing line when an assert has no message."""
    message = reply.get("ename", "Error")
    if reply.get("evalue"):
        message += f": {reply['evalue']}"
    else:
        text = ANSI_RE.sub("", "\n".join(reply.get("traceback", [])))
        lines = [m.group(1) for m in map(ARROW_RE.match, text.splitlines()) if m]
        if lines:
            message += f" at `{lines[-1]}`"
    return message


def run_notebook(
    nb: nbformat.NotebookNode, cwd: Path, env: dict[str, str], timeout: float
) -> dict[str, CellResult]:
    """Run `nb` in place, cell by cell, in a fresh kernel; results by cell id.

    Errors never stop the run. A cell that runs past `timeout` seconds is interrupted (KeyboardInterrupt)
    and the run goes on; if the kernel dies, or stays stuck after the interrupt, later cells are "not run".
    """
    replies: dict[int, dict] = {}
    client = NotebookClient(
        nb,
        timeout=timeout,
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={"ename": "Timeout", "evalue": "", "traceback": []},
        kernel_name="python3",  # the grader's own environment, whatever the notebook says
        resources={"metadata": {"path": str(cwd)}},
        on_cell_executed=lambda cell, cell_index, execute_reply: replies.__setitem__(
            cell_index, execute_reply["content"]
        ),
    )
    results: dict[str, CellResult] = {}
    stopped = ""
    with client.setup_kernel(env=env):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            where = f"cell {index + 1}"
            if stopped:
                results[cell.get("id")] = CellResult("not run", f"{where} not run: {stopped}")
                cell.outputs, cell.execution_count = [], None  # no stale outputs from before
                continue
            try:
                client.execute_cell(cell, index)
            except DeadKernelError:
                results[cell.get("id")] = CellResult(
                    "error", f"{where}: the kernel died (a crash?)"
                )
                stopped = f"the kernel died in {where}"
                continue
            except Exception as e:  # the grader's own trouble with this cell: report it, stop there
                results[cell.get("id")] = CellResult("error", f"{where}: {type(e).__name__}: {e}")
                stopped = f"the grader could not run {where}"
                continue
            reply = replies.pop(index, {"status": "ok"})
            if reply.get("status") != "error":
                results[cell.get("id")] = CellResult("ok")
            elif reply.get("ename") == "Timeout":
                results[cell.get("id")] = CellResult(
                    "timeout", f"{where}: timed out after {timeout:g} s (an infinite loop?)"
                )
                # The interrupt usually frees the kernel; if even `pass` times out, give up on it.
                nb.cells.append(nbformat.v4.new_code_cell("pass"))
                client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
                nb.cells.pop()
                if replies.pop(len(nb.cells), {}).get("ename") == "Timeout":
                    stopped = f"the kernel was stuck after the timeout in {where}"
            else:
                results[cell.get("id")] = CellResult("error", f"{where}: {_error_message(reply)}")
    return results


def _package_tests(exercise: Exercise, tests_dir: Path) -> list[str]:
    """The pytest targets that grade an exported answer, as absolute paths (may be empty)."""
    if exercise.tests:
        return [str(tests_dir.parent / target) for target in exercise.tests]
    default = tests_dir / f"test_{exercise.module}.py"
    return [str(default)] if default.exists() else []


def run_package_tests(targets: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run pytest on `targets` with the student's package first on the path; "" when all pass."""
    # nbval is for notebooks, not package tests, and takes seconds to load: leave it out.
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-rfE",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:nbval",
    ]
    command += targets
    try:
        run = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return f"package tests timed out after {timeout:g} s"
    if run.returncode == 0:
        return ""
    lines = run.stdout.strip().splitlines() or [run.stderr.strip() or "no output"]
    first = next((line for line in lines if line.startswith(("FAILED", "ERROR"))), lines[-1])
    return f"package tests failed: {first}"


def judge(
    exercise: Exercise, cells: dict[str, nbformat.NotebookNode], results: dict[str, CellResult]
) -> tuple[str, str]:
    """(status, message) of one exercise from its cells in the student's run."""
    for cell_id in exercise.answer_cells:
        if cell_id not in cells:
            return NOT_ATTEMPTED, "the answer cell was deleted"
        if f'NotImplementedError("Exercise {exercise.id}:' in cells[cell_id].source:
            return NOT_ATTEMPTED, ""
    for cell_id in exercise.cells:
        if cell_id not in cells:
            return FAILED, "a check cell was deleted; copy it back from the student edition"
        result = results.get(cell_id, CellResult("not run", "not run"))
        if result.status != "ok":
            return FAILED, result.message
    return PASSED, ""


def grade_student(
    student: Path,
    notebook_dir: Path = _export.NOTEBOOK_DIR,
    tests_dir: Path = TESTS_DIR,
    out: Path = BUILD_DIR / "grades",
    timeout: float = 120.0,
    test_mode: bool = True,
    name: str | None = None,
    package_dir: Path = _export.PACKAGE_DIR,
) -> dict:
    """Grade the work in `student` (a folder holding notebooks/, or the notebooks themselves).

    Everything runs on a copy in `out/<name>/` (the executed notebooks stay there for the teacher to
    read), and `out/<name>/report.json` is written. Returns that report.
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

    # Prepare each notebook: checks come from the teacher; a missing notebook gets its stub version
    # so that later lessons still find its module.
    plan = []  # (teacher path, exercises, student notebook or None, why it is missing)
    for path in teacher:
        teacher_nb = read_notebook(path)
        exercises = find_exercises(teacher_nb, path.name)
        target = work / "notebooks" / path.name
        missing = "" if target.exists() else "notebook not handed in"
        try:
            nb = None if missing else read_notebook(target)
        except ClassroomError as e:
            nb, missing = None, f"notebook cannot be read: {e}"
        if nb is None:
            nbformat.write(student_notebook(teacher_nb, path.name), target)
        else:
            checks = {c for e in exercises for c in e.check_cells}
            originals = {c.get("id"): c.source for c in teacher_nb.cells}
            for cell in nb.cells:
                if cell.get("id") in checks:
                    cell.source = originals[cell.id]
            nbformat.write(nb, target)
        plan.append((path, exercises, nb, missing))

    # The student's package is exported from their notebooks, never taken from the folder as is.
    export_failure = ""
    try:
        build_package(
            [work / "notebooks" / p.name for p in teacher], work / "tinylm_core", package_dir
        )
    except _export.ExportError as e:
        export_failure = f"export failed: {e}"
        (work / "tinylm_core").mkdir(exist_ok=True)  # so the teacher's package is never imported
        (work / "tinylm_core" / "__init__.py").write_text(
            f"raise ImportError({export_failure!r})\n"
        )
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(work), os.environ.get("PYTHONPATH")]))
    env.pop("TINYLM_TEST_MODE", None)
    if test_mode:
        env["TINYLM_TEST_MODE"] = "1"

    grades, notebooks, package_runs = [], {}, {}
    for path, exercises, nb, missing in plan:
        info = {"handed_in": nb is not None, "exercises": len(exercises), "ran": False}
        notebooks[path.name] = info
        if not exercises:
            continue
        results: dict[str, CellResult] = {}
        cells = {c.get("id"): c for c in nb.cells} if nb is not None else {}
        attempted = [e for e in exercises if judge(e, cells, {})[0] != NOT_ATTEMPTED]
        if attempted:  # a notebook whose answers are all still stubs has nothing to run
            start = time.perf_counter()
            try:
                results = run_notebook(nb, work / "notebooks", env, timeout)
            except Exception as e:  # a kernel that cannot start must not stop the other notebooks
                info["problem"] = f"could not run: {type(e).__name__}: {e}"
            info.update(ran=True, seconds=round(time.perf_counter() - start, 1))
            nbformat.write(nb, work / "notebooks" / path.name)
        for exercise in exercises:
            if nb is None:
                status, message = NOT_ATTEMPTED, missing
            else:
                status, message = judge(exercise, cells, results)
                if status == PASSED and exercise.module:
                    targets = tuple(_package_tests(exercise, tests_dir))
                    if targets and targets not in package_runs and not export_failure:
                        package_runs[targets] = run_package_tests(
                            list(targets), work, env, timeout * 10
                        )
                    failure = export_failure or package_runs.get(targets, "")
                    status, message = (FAILED, failure) if failure else (status, message)
            points = exercise.points if status == PASSED else 0
            grades.append(
                Grade(
                    name,
                    path.name,
                    exercise.id,
                    exercise.title,
                    status,
                    points,
                    exercise.points,
                    message,
                )
            )
    score = sum(g.points for g in grades)
    total = sum(g.max_points for g in grades)
    report = {
        "student": name,
        "score": score,
        "max_score": total,
        "percent": round(100 * score / total, 1) if total else 0.0,
        "test_mode": test_mode,
        "cell_timeout_s": timeout,
        "graded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "notebooks": notebooks,
        "exercises": [asdict(g) for g in grades],
    }
    (work / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def update_gradebook(path: Path, reports: list[dict]) -> None:
    """Write one CSV row per student and exercise, replacing these students' earlier rows."""
    names = list(Grade.__dataclass_fields__)
    rows = []
    if path.exists():
        with path.open(newline="", encoding="utf-8") as f:
            regraded = {report["student"] for report in reports}
            rows = [row for row in csv.DictReader(f) if row["student"] not in regraded]
    rows += [row for report in reports for row in report["exercises"]]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)


def format_report(report: dict) -> str:
    lines = [
        f"{report['student']}: {report['score']}/{report['max_score']} ({report['percent']:g}%)"
    ]
    notebook = None
    for g in report["exercises"]:
        if g["notebook"] != notebook:
            notebook = g["notebook"]
            info = report["notebooks"][notebook]
            ran = f"ran in {info['seconds']:g} s" if info["ran"] else "nothing attempted, not run"
            ran = ran if info["handed_in"] else "not handed in"
            lines.append(f"  {notebook} ({info.get('problem', ran)})")
        mark = f"{g['points']}/{g['max_points']}"
        lines.append(f"    Exercise {g['exercise']:<6} {g['status']:<14} {mark:>5}  {g['title']}")
        if g["message"]:
            lines.append(f"        {g['message'][:300]}")
    return "\n".join(lines)


# --- command line ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tools/classroom.py",
        description="Student edition and autograder for the tinylm notebooks (see TEACHING.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate the exercise markup of the notebooks")
    student = commands.add_parser("student", help="write the student edition (make student)")
    grade = commands.add_parser("grade", help="grade students' work (make grade STUDENT=...)")
    for sub in (check, student, grade):
        sub.add_argument(
            "--notebooks",
            type=Path,
            default=_export.NOTEBOOK_DIR,
            help="the teacher's notebooks (default: notebooks/)",
        )
    student.add_argument(
        "--out",
        type=Path,
        default=BUILD_DIR / "student",
        help="where to write it (default: build/student)",
    )
    grade.add_argument(
        "work",
        nargs="+",
        type=Path,
        help="a student's folder (holding notebooks/ or the notebooks); several allowed",
    )
    grade.add_argument(
        "--out",
        type=Path,
        default=BUILD_DIR / "grades",
        help="reports and executed notebooks go here (default: build/grades)",
    )
    grade.add_argument(
        "--tests",
        type=Path,
        default=TESTS_DIR,
        help="the package tests for exported answers (default: tests/)",
    )
    grade.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds a cell may run before it is interrupted (default: 120)",
    )
    grade.add_argument(
        "--full",
        action="store_true",
        help="run the notebooks in full mode (default: TINYLM_TEST_MODE=1, fast)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            paths = sorted(args.notebooks.glob(_export.NOTEBOOK_GLOB))
            for path in paths:
                exercises = find_exercises(read_notebook(path), path.name)
                print(
                    f"{path.name}: {len(exercises)} exercise(s)"
                    + "".join(f"\n  {e.id} {e.title} ({e.points} pt)" for e in exercises)
                )
        elif args.command == "student":
            exercises = build_student(args.notebooks, args.out)
            count = sum(len(e) for e in exercises.values())
            print(
                f"wrote the student edition to {args.out}: {len(exercises)} notebooks, "
                f"{count} exercises, no solution text found in it"
            )
        else:
            reports = []
            for work in args.work:
                report = grade_student(
                    work, args.notebooks, args.tests, args.out, args.timeout, not args.full
                )
                print(format_report(report))
                reports.append(report)
            update_gradebook(args.out / "gradebook.csv", reports)
            print(f"reports: {args.out}/<student>/report.json, gradebook: {args.out}/gradebook.csv")
    except (ClassroomError, _export.ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

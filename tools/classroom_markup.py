"""Exercise markup: reading the exercises of a teacher notebook, stubbing them, proving nothing leaks.

The convention (nbgrader's markers, so teachers who use nbgrader can take the notebooks) is described
in `tools/classroom.py`'s docstring and in TEACHING.md; this module is its parser.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from tools import export as _export

HEADING_RE = re.compile(r"^(#{1,6})\s")
EXERCISE_RE = re.compile(
    r"^(#{1,6})\s*Exercise\s+(\d+)\.(\d+)\s*[:.\-\u2013\u2014]?\s*(.*?)\s*(?:\((\d+)\s*points?\))?\s*$",
    re.IGNORECASE,
)
# A check cell may give its own points: `# Check: causal rows are zero (2 points)`.
CHECK_RE = re.compile(r"^#\s*check\b\s*:?\s*(.*?)\s*\((\d+)\s*points?\)\s*$", re.IGNORECASE)
# A markdown cell of an exercise that starts with `**Your answer:**` holds a free-text answer.
TEXT_ANSWER_RE = re.compile(r"^\s*\*\*your answer:?\*\*", re.IGNORECASE)
TEXT_PLACEHOLDER = "_(write your answer here)_"
SOLUTION, HIDDEN = "### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS"
MARKERS = {SOLUTION: "### END SOLUTION", HIDDEN: "### END HIDDEN TESTS"}


class ClassroomError(ValueError):
    """Exercise markup or a folder cannot be used; the message names the place and the fix."""


@dataclass
class Check:
    """Cells whose successful run earns `points`: one check cell, or all of an exercise's."""

    name: str
    cells: list[str]
    points: int


@dataclass
class Exercise:
    id: str  # "3.2"
    title: str
    points: int
    notebook: str  # file name, e.g. 03_char_tokenizer.ipynb
    cells: list[str] = field(default_factory=list)  # ids of its code cells, in order
    answer_cells: list[str] = field(default_factory=list)  # those holding a solution region
    text_cells: list[str] = field(default_factory=list)  # markdown cells for free-text answers
    checks: list[Check] = field(default_factory=list)
    module: str | None = None  # set when an answer cell is exported
    tests: list[str] = field(default_factory=list)  # pytest targets for an exported answer

    @property
    def check_cells(self) -> list[str]:
        return [c for c in self.cells if c not in self.answer_cells]

    @property
    def stub(self) -> str:
        return f"NotImplementedError({json.dumps(f'Exercise {self.id}: {self.title}')})"


def read_notebook(path: Path) -> nbformat.NotebookNode:
    try:
        return nbformat.read(path, as_version=4)
    except Exception as e:  # nbformat raises several types for unreadable files
        raise ClassroomError(f"{path}: cannot be read as a notebook ({e})") from e


def regions(source: str, where: str) -> list[tuple[int, int, str]]:
    """(begin line, end line, begin marker) of each marked region in a cell's source."""
    found, open_at, open_marker = [], None, None
    for number, line in enumerate(source.splitlines()):
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
            found.append((open_at, number, open_marker))
            open_at, open_marker = None, None
    if open_marker is not None:
        raise ClassroomError(
            f"{where}: '{open_marker}' on line {open_at + 1} is never closed; "
            f"add '{MARKERS[open_marker]}' below the solution"
        )
    return found


def export_directives(source: str) -> dict[str, str]:
    """The `#| name argument` lines at the top of a cell, as the exporter reads them."""
    directives = {}
    for line in source.splitlines():
        match = _export.DIRECTIVE_RE.match(line)
        if not match:
            break
        directives.setdefault(match.group(1), match.group(2))
    return directives


def _declared_check(source: str) -> tuple[str, int] | None:
    """(description, points) from a check cell's `# Check: ... (K points)` line, if it has one."""
    for line in source.splitlines():
        text = line.strip()
        if not text or text in MARKERS:
            continue
        match = CHECK_RE.match(text)
        return (match.group(1), int(match.group(2))) if match else None
    return None


def _finish(exercise: Exercise, sources: dict[str, str], declared_points: bool) -> None:
    """Split an exercise into checks (points per check) once all its cells are known."""
    if not exercise.answer_cells:
        raise ClassroomError(
            f"{exercise.notebook}: Exercise {exercise.id} has no '### BEGIN SOLUTION' region; add "
            "one to its answer cell (or remove the 'Exercise' heading)"
        )
    declared = {c: _declared_check(sources[c]) for c in exercise.check_cells}
    if not any(declared.values()):  # all or nothing, for the exercise's points
        exercise.checks = [Check("all checks", list(exercise.cells), exercise.points)]
        return
    missing = [c for c, d in declared.items() if d is None]
    if missing:
        raise ClassroomError(
            f"{exercise.notebook}: Exercise {exercise.id}: check cell {missing[0]!r} has no "
            "'# Check: what (K points)' first line while others do; give every check its points"
        )
    total = sum(points for _, points in declared.values())
    if declared_points and total != exercise.points:
        raise ClassroomError(
            f"{exercise.notebook}: Exercise {exercise.id} says {exercise.points} points but its "
            f"checks add up to {total}; fix the heading or the checks"
        )
    exercise.points = total
    exercise.checks = [
        Check(declared[c][0] or f"check {i}", exercise.answer_cells + [c], declared[c][1])
        for i, c in enumerate(exercise.check_cells, start=1)
    ]


def find_exercises(nb: nbformat.NotebookNode, name: str) -> list[Exercise]:
    """The exercises of one notebook, in order; raises ClassroomError on inconsistent markup."""
    number = int(name[:2]) if name[:2].isdigit() else None
    exercises: list[tuple[Exercise, bool]] = []
    current, level, default_exp = None, 0, None
    sources = {cell.get("id"): cell.source for cell in nb.cells}
    for index, cell in enumerate(nb.cells, start=1):
        where = f"{name}, cell {index}"
        if cell.cell_type == "markdown":
            first = cell.source.lstrip().split("\n", 1)[0]
            heading, match = HEADING_RE.match(first), EXERCISE_RE.match(first)
            if match:
                hashes, major, minor, title, points = match.groups()
                if number is not None and int(major) != number:
                    raise ClassroomError(
                        f"{where}: 'Exercise {major}.{minor}' in notebook {number:02d}; "
                        f"number it 'Exercise {number}.{minor}'"
                    )
                ident = f"{int(major)}.{int(minor)}"
                if any(e.id == ident for e, _ in exercises):
                    raise ClassroomError(f"{where}: 'Exercise {ident}' is used twice; renumber one")
                current = Exercise(ident, title or f"exercise {ident}", int(points or 1), name)
                level = len(hashes)
                exercises.append((current, points is not None))
            elif heading and current is not None and len(heading.group(1)) <= level:
                current = None
            if current is not None and TEXT_ANSWER_RE.match(cell.source):
                current.text_cells.append(cell.get("id"))
                regions(cell.source, where)  # a model answer may be marked as a solution
            elif regions(cell.source, where):
                raise ClassroomError(
                    f"{where}: solution markers in a markdown cell; only code cells and "
                    "'**Your answer:**' cells hold answers, so put the answer in a code cell"
                )
            continue
        if cell.cell_type != "code":
            continue
        if "id" not in cell:
            raise ClassroomError(
                f"{name}: cells have no ids (nbformat < 4.5); open and save it in JupyterLab "
                "or run `jupyter nbconvert --to notebook --inplace` on it"
            )
        directives = export_directives(cell.source)
        default_exp = directives.get("default_exp", default_exp)
        marked = regions(cell.source, where)
        solutions = [r for r in marked if r[2] == SOLUTION]
        if marked and current is None:
            raise ClassroomError(
                f"{where}: a marked region outside any exercise; put a markdown cell "
                "'### Exercise N.M: title' above it"
            )
        if current is None:
            continue
        if solutions and len(solutions) < len(marked):
            raise ClassroomError(
                f"{where}: hidden tests belong in a check cell, not an answer cell"
            )
        current.cells.append(cell.id)
        if solutions:
            current.answer_cells.append(cell.id)
            if "export" in directives:
                current.module = directives["export"] or default_exp
                current.tests += directives.get("tests", "").split()
    for exercise, declared in exercises:
        _finish(exercise, sources, declared)
    return [exercise for exercise, _ in exercises]


def strip_solutions(source: str, stub: str, placeholder: str | None = None) -> str:
    """Replace each solution region by `raise <stub>` (or `placeholder`); drop hidden tests."""
    lines = source.splitlines()
    for begin, end, marker in reversed(regions(source, "cell")):
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        replacement = placeholder if placeholder is not None else f"{indent}raise {stub}"
        lines[begin : end + 1] = [replacement] if marker == SOLUTION else []
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
        for cell_id in exercise.text_cells:
            by_id[cell_id].source = strip_solutions(by_id[cell_id].source, "", TEXT_PLACEHOLDER)
    return student


def secret_lines(
    notebooks: list[Path],
    public_texts: list[str] = (),
    hidden: dict[tuple[str, str], set[int]] | None = None,
    secret_texts: list[str] = (),
) -> set[str]:
    """Lines (stripped) that occur only inside solution or hidden-test regions, never elsewhere.

    `hidden` adds, per (notebook name, cell id), line numbers that the build edition stubs out;
    `secret_texts` adds whole texts that never ship (the hidden test files). Used to prove that a
    student edition leaks nothing: any of these lines found there, as a line or inside a longer
    text (a traceback), is a leak. Lines too short to be told apart from ordinary code (`pass`,
    `)`) are left out.
    """
    secret, public = set(), set()
    for text in public_texts:
        public.update(line.strip() for line in text.splitlines())
    for text in secret_texts:
        secret.update(line.strip() for line in text.splitlines())
    for path in notebooks:
        for cell in read_notebook(path).cells:
            lines = cell.source.splitlines()
            inside = set((hidden or {}).get((path.name, cell.get("id")), ()))
            for begin, end, _ in regions(cell.source, f"{path.name}"):
                inside.update(range(begin, end + 1))
            for number, line in enumerate(lines):
                (secret if number in inside else public).add(line.strip())
    markers = set(MARKERS) | set(MARKERS.values())
    candidates = {s for s in secret - public - markers if len(s) >= 6 and re.search(r"\w", s)}
    # A line whose text is visible inside a lesson line (`return w @ v` in `return w @ v, w`) is
    # not a secret either.
    visible = "\n".join(public)
    return {s for s in candidates if s not in visible}


def notebook_texts(nb: nbformat.NotebookNode) -> list[str]:
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
    """Places in `folder` (notebooks, outputs, package, any file) where a secret line appears.

    Binary files are searched too, as UTF-8 bytes, for secrets of 16 characters or more.
    """
    long_secrets = [s for s in secrets if len(s) >= 16]
    leaks = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError:
            found = {s for s in long_secrets if s.encode() in data}
            leaks += [f"{path.relative_to(folder)}: {line!r}" for line in sorted(found)]
            continue
        texts = notebook_texts(nbformat.reads(raw, 4)) if path.suffix == ".ipynb" else [raw]
        for text in texts:
            lines = {line.strip() for line in text.splitlines()}
            found = (lines & secrets) or {s for s in long_secrets if s in text}
            leaks += [f"{path.relative_to(folder)}: {line!r}" for line in sorted(found)]
    return leaks

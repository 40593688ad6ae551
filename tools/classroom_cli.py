"""The command line of tools/classroom.py: check, student, grade (what `make student` and
`make grade` run). See TEACHING.md."""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tools import classroom as _classroom
from tools import export as _export
from tools.classroom_build import CONFIG, load_config
from tools.classroom_markup import ClassroomError, find_exercises, read_notebook
from tools.classroom_report import format_report, summary_table, update_gradebook, write_answers


def _grade_one(work: Path, options: dict) -> dict:
    """grade_student for a worker process: a failure is this student's problem, not the class's."""
    try:
        return _classroom.grade_student(work, **options)
    except Exception as e:  # reported in the summary; the other students are still graded
        name = options.get("name") or Path(work).resolve().name
        problem = f"grading failed: {type(e).__name__}: {e}"
        return {"student": name, "score": 0, "max_score": 0, "percent": 0.0, "graded": [],
                "notebooks": {"-": {"handed_in": False, "ran": False, "problem": problem}},
                "exercises": [], "checks": [], "fallbacks": [], "tampering": []}  # fmt: skip


def grade_class(works: list[Path], jobs: int = 1, **options) -> list[dict]:
    """Grade several students, `jobs` at a time; reports in the order of `works`."""
    if jobs <= 1 or len(works) <= 1:
        return [_grade_one(work, options) for work in works]
    context = multiprocessing.get_context("spawn")  # no forked copy of a parent's kernel clients
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        return list(pool.map(_grade_one, works, [options] * len(works)))


def _lessons(text: str) -> tuple[str, ...]:
    return tuple(f"{int(x):02d}" for x in text.split(",") if x.strip()) if text else ()


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
        sub.add_argument("--notebooks", type=Path, default=_export.NOTEBOOK_DIR,
                         help="the teacher's notebooks (default: notebooks/)")  # fmt: skip
    for sub in (student, grade):
        sub.add_argument("--edition", choices=("regular", "build"), default="regular",
                         help="build: students also write the pieces listed in --config")  # fmt: skip
        sub.add_argument("--config", type=Path, default=CONFIG,
                         help=f"the build edition's pieces (default: tools/{CONFIG.name})")  # fmt: skip
        sub.add_argument("--release", default="",
                         help="lessons whose pieces are no longer exercises, e.g. 01,02")  # fmt: skip
        sub.add_argument("--package", type=Path, default=_export.PACKAGE_DIR,
                         help="the folder with the hand-written modules (default: tinylm_core/)")  # fmt: skip
    student.add_argument("--out", type=Path, default=_classroom.BUILD_DIR / "student",
                         help="where to write it (default: build/student)")  # fmt: skip
    grade.add_argument("work", nargs="+", type=Path,
                       help="a student's folder (holding notebooks/ or the notebooks); several allowed")  # fmt: skip
    grade.add_argument("--out", type=Path, default=_classroom.BUILD_DIR / "grades",
                       help="reports and executed notebooks go here (default: build/grades)")  # fmt: skip
    grade.add_argument("--tests", type=Path, default=_classroom.TESTS_DIR,
                       help="the package tests for exported answers (default: tests/)")  # fmt: skip
    grade.add_argument("--timeout", type=float, default=120.0,
                       help="seconds a cell or a check may run before it is stopped (default: 120)")  # fmt: skip
    grade.add_argument("--full", action="store_true",
                       help="run the notebooks in full mode (default: TINYLM_TEST_MODE=1, fast)")  # fmt: skip
    grade.add_argument("--jobs", type=int, default=1,
                       help="students graded at the same time (default: 1)")  # fmt: skip
    grade.add_argument("--only", default="", help="grade only these lessons, e.g. 01,02")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            for path in sorted(args.notebooks.glob(_export.NOTEBOOK_GLOB)):
                exercises = find_exercises(read_notebook(path), path.name)
                print(
                    f"{path.name}: {len(exercises)} exercise(s)"
                    + "".join(f"\n  {e.id} {e.title} ({e.points} pt)" for e in exercises)
                )
            return 0
        pieces = None
        if args.edition == "build":
            pieces = load_config(args.config, _lessons(args.release))
        if args.command == "student":
            exercises = _classroom.build_student(args.notebooks, args.out, args.package, pieces)
            count = sum(len(e) for e in exercises.values())
            built = sum(len(p) for p in (pieces or {}).values())
            print(
                f"wrote the {args.edition} edition to {args.out}: {len(exercises)} notebooks, "
                f"{count} exercises" + (f", {built} pieces to build" if pieces else "")
                + ", no solution or hidden-test text found in it"
            )  # fmt: skip
            return 0
        start = time.perf_counter()
        options = dict(notebook_dir=args.notebooks, tests_dir=args.tests, out=args.out,
                       timeout=args.timeout, test_mode=not args.full, package_dir=args.package,
                       pieces=pieces, only=_lessons(args.only))  # fmt: skip
        args.out.mkdir(parents=True, exist_ok=True)
        reports = grade_class(args.work, args.jobs, **options)
        for report in reports:
            if report["exercises"]:
                print(format_report(report))
        update_gradebook(args.out / "gradebook.csv", reports)
        write_answers(args.out)
        table = summary_table(reports)
        (args.out / "summary.md").write_text(table + "\n", encoding="utf-8")
        print(
            f"\n{table}\n\n{len(reports)} student(s) graded in {time.perf_counter() - start:.0f} s"
        )
        print(f"reports: {args.out}/<student>/report.md, gradebook: {args.out}/gradebook.csv")
    except (ClassroomError, _export.ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0

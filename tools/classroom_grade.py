"""Grading one student: run their notebooks with the teacher's checks, and the hidden package checks.

Everything runs on a copy of the student's work. Check cells come from the teacher's notebook
(matched by cell id). Before each check cell the kernel puts back any function of torch, numpy,
math or builtins that student code replaced (and the report says so), so a patched
`torch.allclose` cannot pass a check. Package checks (pytest) run in their own process, with
`tools/hidden_tests/tinylm_guard.py`: a time limit per test, and the same protection.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from tools.classroom_markup import MARKERS, TEXT_ANSWER_RE, TEXT_PLACEHOLDER

PASSED, PARTIAL, FAILED, NOT_ATTEMPTED = "passed", "partial", "failed", "not attempted"
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
ARROW_RE = re.compile(r"^-*>\s*\d+\s+(.*\S)")  # IPython marks the failing line: "----> 3 assert x"
PLUGIN_DIR = Path(__file__).resolve().parent / "hidden_tests"

# Run in the kernel before the first cell, and before each check cell (tools/hidden_tests/tinylm_guard.py).
GUARD_SETUP = "import tinylm_guard as _tinylm_guard\n_tinylm_guard.snapshot()\ndel _tinylm_guard"
GUARD_CHECK = "__import__('sys').modules['tinylm_guard'].check_kernel()"


@dataclass
class CellResult:
    status: str  # "ok", "error", "timeout" or "not run"
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
    return message.splitlines()[0] if message else message


def run_notebook(
    nb: nbformat.NotebookNode,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    guarded: set[str] = frozenset(),
) -> tuple[dict[str, CellResult], list[str]]:
    """Run `nb` in place, cell by cell, in a fresh kernel; results by cell id, and tampering found.

    Errors never stop the run. A cell that runs past `timeout` seconds is interrupted and the run
    goes on; if the kernel dies, or stays stuck after the interrupt, later cells are "not run".
    Before each cell in `guarded` (the checks) the guard cell runs (GUARD_CHECK).
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

    def side_cell(source: str) -> tuple[dict, str]:
        """Run grader code in the kernel, outside the notebook; its reply and printed text."""
        nb.cells.append(nbformat.v4.new_code_cell(source))
        try:
            client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
            text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
            return replies.pop(len(nb.cells) - 1, {}), text
        finally:
            nb.cells.pop()

    results: dict[str, CellResult] = {}
    tampering: list[str] = []
    stopped = ""
    with client.setup_kernel(env=env):
        side_cell(GUARD_SETUP)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            where = f"cell {index + 1}"
            if stopped:
                results[cell.get("id")] = CellResult("not run", f"{where} not run: {stopped}")
                cell.outputs, cell.execution_count = [], None  # no stale outputs from before
                continue
            try:
                if cell.get("id") in guarded:
                    _, said = side_cell(GUARD_CHECK)
                    if "TAMPERED:" in said:
                        found = said.split("TAMPERED:", 1)[1].strip()
                        tampering.append(f"before {where}: {found} (put back for the check)")
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
                if side_cell("pass")[0].get("ename") == "Timeout":
                    stopped = f"the kernel was stuck after the timeout in {where}"
            else:
                results[cell.get("id")] = CellResult("error", f"{where}: {_error_message(reply)}")
    return results, tampering


def run_package_checks(
    targets: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> dict[str, tuple[bool, str]]:
    """Run pytest on `targets` against the student's package; (passed, first line) per target.

    `timeout` is per test (the guard plugin's alarm); the whole run gets ten times as long.
    """
    if not targets:
        return {}
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "results.jsonl"
        env = {
            **env,
            "TINYLM_CHECK_RESULTS": str(log),
            "TINYLM_CHECK_TIMEOUT": f"{timeout:g}",
        }
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += ["-p", "no:nbval", "-p", "tinylm_guard", *sorted(set(targets))]
        problem = ""
        try:
            run = subprocess.run(
                command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout * 10
            )
            errors = [line for line in run.stdout.splitlines() if line.startswith("E ")]
            if run.returncode not in (0, 1):
                problem = errors[0][1:].strip() if errors else f"pytest exited {run.returncode}"
        except subprocess.TimeoutExpired:
            problem = f"the package checks were stopped after {timeout * 10:g} s"
        records = (
            [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        )
    results = {}
    for target in targets:
        file, _, name = target.partition("::")
        mine = [
            r
            for r in records
            if r["file"] == Path(file).name and (not name or r["name"].split("[")[0] == name)
        ]
        failed = [r for r in mine if r["outcome"] == "failed"]
        if failed:
            message = failed[0]["message"] or "failed"
            results[target] = (False, message if name else f"{failed[0]['name']}: {message}")
        elif any(r["when"] == "call" for r in mine):
            results[target] = (True, "")
        else:
            results[target] = (False, problem or "the check did not run (not found?)")
    return results


def _rows(student, notebook, exercise, title, checks) -> list[dict]:
    """Gradebook rows, one per check: (check name, status, points, max points, message)."""
    return [
        dict(student=student, notebook=notebook, exercise=exercise, check=check, title=title,
             status=status, points=points, max_points=most, message=message)
        for check, status, points, most, message in checks
    ]  # fmt: skip


def grade_exercise(exercise, cells, results, package_failure: str) -> list[tuple]:
    """(check, status, points, max points, message) for each check of a regular exercise."""
    if any(c not in cells for c in exercise.answer_cells):
        return [
            (c.name, NOT_ATTEMPTED, 0, c.points, "the answer cell was deleted")
            for c in exercise.checks
        ]
    if any(
        f'NotImplementedError("Exercise {exercise.id}:' in cells[c].source
        for c in exercise.answer_cells
    ):
        return [(c.name, NOT_ATTEMPTED, 0, c.points, "") for c in exercise.checks]
    graded = []
    for check in exercise.checks:
        message = ""
        for cell_id in check.cells:
            if cell_id not in cells:
                message = "a check cell was deleted; copy it back from the student edition"
            elif results.get(cell_id, CellResult("not run", "not run")).status != "ok":
                message = results.get(cell_id, CellResult("not run", "not run")).message
            if message:
                break
        message = message or package_failure
        graded.append(
            (
                check.name,
                FAILED if message else PASSED,
                0 if message else check.points,
                check.points,
                message,
            )
        )
    return graded  # fmt: skip


def grade_pieces(pieces, statuses, export_failure, run_checks) -> list[tuple[str, list[tuple]]]:
    """Per build piece of one lesson: its checks as (check, status, points, max, message)."""
    written = [p for p in pieces if statuses[p.name] == "written" and not export_failure]
    results = run_checks([t for p in written for t in p.checks]) if written else {}
    graded = []
    for piece in pieces:
        rows = []
        for target, points in piece.checks.items():
            check = target.rpartition("::")[2] or Path(target).name
            if export_failure:
                rows.append((check, FAILED, 0, points, f"export failed: {export_failure}"))
            elif statuses[piece.name] != "written":
                why = (
                    "still a stub"
                    if statuses[piece.name] == "stub"
                    else "not found in the notebook"
                )
                rows.append(
                    (
                        check,
                        NOT_ATTEMPTED,
                        0,
                        points,
                        f"{why}: the reference stood in for it (fallback), no points",
                    )
                )
            else:
                ok, message = results[target]
                rows.append((check, PASSED if ok else FAILED, points if ok else 0, points, message))
        graded.append((piece, rows))
    return graded  # fmt: skip


def answer_text(source: str, prompt: str) -> str:
    """A student's free-text answer: their cell without the teacher's prompt line or placeholder."""
    lines = source.splitlines()
    if lines and lines[0].strip() == prompt.strip():
        lines = lines[1:]
    elif lines:
        lines[0] = TEXT_ANSWER_RE.sub("", lines[0])
    lines = [
        line
        for line in lines
        if line.strip() not in MARKERS and line.strip() not in MARKERS.values()
    ]
    return "\n".join(lines).replace(TEXT_PLACEHOLDER, "").strip()


def summarize(rows: list[dict]) -> list[dict]:
    """One row per exercise from its checks: points added, status passed/partial/failed/..."""
    exercises: dict[tuple, dict] = {}
    for row in rows:
        key = (row["notebook"], row["exercise"])
        if key not in exercises:
            exercises[key] = {**row, "points": 0, "max_points": 0, "message": "", "statuses": []}
        entry = exercises[key]
        entry["points"] += row["points"]
        entry["max_points"] += row["max_points"]
        entry["statuses"].append(row["status"])
        entry["message"] = entry["message"] or row["message"]
    for entry in exercises.values():
        statuses = set(entry.pop("statuses"))
        entry.pop("check")
        if len(statuses) == 1:
            entry["status"] = statuses.pop()
        else:
            entry["status"] = PARTIAL if entry["points"] else FAILED
    return list(exercises.values())

"""What grading writes: the class gradebook, a report per student, the free-text answers, a summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

COLUMNS = ["student", "notebook", "exercise", "check", "title", "status", "points", "max_points", "message"]  # fmt: skip


def _graded(report: dict) -> list[str]:
    """The notebooks a report graded (its rows' notebooks, for a report without the list)."""
    return report.get("graded") or sorted({row["notebook"] for row in report["exercises"]})


def update_gradebook(path: Path, reports: list[dict]) -> None:
    """Write one CSV row per student and check, replacing the rows of what was graded again.

    A report replaces its student's rows for the notebooks it graded (all of them, or those of
    `--only`); the other rows stay, so grading lesson by lesson builds up the gradebook.
    """
    rows = []
    if path.exists():
        with path.open(newline="", encoding="utf-8") as f:
            regraded = {(r["student"], nb) for r in reports for nb in _graded(r)}
            rows = [
                row
                for row in csv.DictReader(f)
                if (row["student"], row["notebook"]) not in regraded
            ]
    rows += [row for report in reports for row in report.get("checks", report["exercises"])]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _first_line(text: str, limit: int = 200) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def format_report(report: dict) -> str:
    """The plain-text report printed for each student."""
    lines = [
        f"{report['student']}: {report['score']}/{report['max_score']} ({report['percent']:g}%)"
    ]
    notebook = None
    labels = [
        g["exercise"] if g["exercise"].startswith("build") else f"Exercise {g['exercise']}"
        for g in report["exercises"]
    ]
    width = max([15, *map(len, labels)])
    for g, label in zip(report["exercises"], labels):
        if g["notebook"] != notebook:
            notebook = g["notebook"]
            info = report["notebooks"][notebook]
            ran = f"ran in {info['seconds']:g} s" if info["ran"] else "notebook not run"
            ran = ran if info["handed_in"] else "not handed in"
            lines.append(f"  {notebook} ({info.get('problem', ran)})")
        mark = f"{g['points']}/{g['max_points']}"
        lines.append(f"    {label:<{width}} {g['status']:<14} {mark:>5}  {g['title'][:60]}")
        if g["message"]:
            lines.append(f"        {_first_line(g['message'], 300)}")
    for item in report.get("tampering", []):
        lines.append(f"  tampering: {item}")
    return "\n".join(lines)


def markdown_report(report: dict) -> str:
    """The per-student feedback (report.md): every check with pass/fail and its first failure line."""
    out = [
        f"# {report['student']}: {report['score']}/{report['max_score']} points ({report['percent']:g}%)",
        "",
        f"Graded in {'test' if report['test_mode'] else 'full'} mode, {report['edition']} edition.",
    ]
    if report.get("fallbacks"):
        out += ["", "**The reference stood in for these pieces (fallback, no points):** "
                + ", ".join(report["fallbacks"]) + "."]  # fmt: skip
    for item in report.get("tampering", []):
        out += ["", f"**Tampering:** {item}"]
    notebook = None
    for row in report["checks"]:
        if row["notebook"] != notebook:
            notebook = row["notebook"]
            info = report["notebooks"][notebook]
            out += ["", f"## {notebook}", ""]
            if info.get("problem") or not info["handed_in"]:
                out += [f"_{info.get('problem', 'not handed in')}_", ""]
            out += ["| exercise | check | result | points | first line of the failure |", "|---|---|---|---|---|"]  # fmt: skip
            notebook = row["notebook"]
        mark = {"passed": "✅ pass", "failed": "❌ fail"}.get(row["status"], row["status"])
        message = _first_line(row["message"]).replace("|", "\\|").replace("`", "'")
        out.append(
            f"| {row['exercise']} | {row['check']} | {mark} | {row['points']}/{row['max_points']} | {message} |"
        )
    return "\n".join(out) + "\n"


def write_answers(out: Path) -> list[Path]:
    """One Markdown file per exercise with every graded student's free-text answer."""
    answers: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(out.glob("*/report.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        for exercise, text in report.get("answers", {}).items():
            answers.setdefault(exercise, []).append((report["student"], text))
    folder = out / "answers"
    folder.mkdir(exist_ok=True)
    written = []
    for exercise, items in sorted(answers.items()):
        path = folder / f"exercise_{exercise}.md"
        body = "".join(
            f"## {student}\n\n{text.strip() or '_(no answer)_'}\n\n"
            for student, text in sorted(items)
        )
        path.write_text(f"# Exercise {exercise}: the students' answers\n\n{body}", encoding="utf-8")
        written.append(path)
    return written


def summary_table(reports: list[dict]) -> str:
    """The table printed at the end of a class grading: one line per student."""
    notebooks = sorted({nb for r in reports for nb in _graded(r)})
    head = ["student", *[nb[:2] for nb in notebooks], "total", "fallbacks", "problems"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in reports:
        by_nb = {}
        for row in r["exercises"]:
            got, most = by_nb.get(row["notebook"], (0, 0))
            by_nb[row["notebook"]] = (got + row["points"], most + row["max_points"])
        cells = [f"{by_nb[nb][0]}/{by_nb[nb][1]}" if nb in by_nb else "-" for nb in notebooks]
        problems = [i.get("problem") for i in r["notebooks"].values() if i.get("problem")]
        problems += ["tampering"] if r.get("tampering") else []
        lines.append("| " + " | ".join([r["student"], *cells, f"{r['score']}/{r['max_score']}",
                                        str(len(r.get("fallbacks", []))), "; ".join(problems)[:80]]) + " |")  # fmt: skip
    return "\n".join(lines)

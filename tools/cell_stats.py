"""Sizes a maintainer cares about: exported cells per notebook, lines per module, the largest class.

    python tools/cell_stats.py          # prints a table; exits 1 when a limit below is broken

Limits (issue 12): no exported cell over 60 lines, median exported cell at most 20 lines,
no generated module over 300 lines, no class over 150 lines.
"""

from __future__ import annotations

import ast
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_CELL, MAX_MEDIAN, MAX_MODULE, MAX_CLASS = 60, 20, 300, 150


def exported_cells(notebook: Path) -> list[int]:
    """Line counts of the notebook's `#| export` cells (directive lines not counted)."""
    sizes = []
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        lines = "".join(cell["source"]).splitlines()
        if lines and lines[0].replace(" ", "").startswith("#|export"):
            sizes.append(sum(1 for line in lines if not line.lstrip().startswith("#|")))
    return sizes


def class_sizes(module: Path) -> list[tuple[str, int]]:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    ]


def main() -> int:
    cells = {
        nb.name: exported_cells(nb)
        for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    }
    every = [n for sizes in cells.values() for n in sizes]
    print(f"{'notebook':32} cells  median  max")
    for name, sizes in cells.items():
        if sizes:
            print(f"{name:32} {len(sizes):5} {statistics.median(sizes):7.1f} {max(sizes):4}")
    median, largest = statistics.median(every), max(every)
    print(f"{'all':32} {len(every):5} {median:7.1f} {largest:4}\n")
    modules = sorted((ROOT / "tinylm_core").glob("*.py"))
    lengths = {m.name: len(m.read_text(encoding="utf-8").splitlines()) for m in modules}
    classes = [(f"{m.stem}.{c}", n) for m in modules for c, n in class_sizes(m)]
    print(
        "modules:", ", ".join(f"{k} {v}" for k, v in sorted(lengths.items(), key=lambda kv: -kv[1]))
    )
    top = sorted(classes, key=lambda c: -c[1])[:5]
    print("largest classes:", ", ".join(f"{c} {n}" for c, n in top))
    problems = (
        [f"exported cell of {largest} lines (limit {MAX_CELL})"] if largest > MAX_CELL else []
    )
    if median > MAX_MEDIAN:
        problems.append(f"median exported cell {median} lines (limit {MAX_MEDIAN})")
    problems += [
        f"{k}: {v} lines (limit {MAX_MODULE})" for k, v in lengths.items() if v > MAX_MODULE
    ]
    problems += [f"class {c}: {n} lines (limit {MAX_CLASS})" for c, n in classes if n > MAX_CLASS]
    for problem in problems:
        print("over the limit:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

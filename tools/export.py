"""Export `#| export` cells from the course notebooks into the `tinylm_core` package.

This file is repository tooling (it is not installed with the package). Directives are nbdev's:

    #| default_exp attention      <- in any cell: this notebook's module is tinylm_core/attention.py
    #| export                     <- a code cell starting with this is copied into that module
    #| export data                <- ... or into tinylm_core/data.py instead

A class may grow across cells, as with d2l's `add_to_class` or nbdev's `@patch`:

    @add_to_class(Trainer)        <- in an exported cell: this method goes into Trainer's body
    def fit(self, ...): ...

The decorator line is dropped and the method lands inside the class, after the methods of earlier
cells, so the generated module reads like hand-written code. Each piece is preceded by a
`# cell N` comment naming the notebook cell it came from, and the module is formatted by ruff.

    python tools/export.py                        # all notebooks (what `make export` runs)
    python tools/export.py notebooks/03_*.ipynb   # only these notebooks' modules

Everything is checked before anything is written: a syntax error, two notebooks claiming the same
module, an `#| export` cell before `#| default_exp`, or a method for a class the module does not
define raises `ExportError` and writes nothing. The exporter never deletes a file: a generated
module that no notebook exports any more is reported (and fails the drift test) for you to remove.
`tinylm_core/__init__.py`, the curated public API, is written by hand. The notebooks themselves
are rewritten the way JupyterLab saves them, without per-cell timing metadata, so that they open
unmodified.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
PACKAGE_DIR = ROOT / "tinylm_core"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
HEADER = (
    "# This file is generated from {notebook} by `make export`.\n"
    "# Do not edit it: edit the notebook, then run `make export`.\n"
)
HEADER_RE = re.compile(r"^# This file is generated from (\S+) by `make export`\.")
DIRECTIVE_RE = re.compile(r"^\s*#\|\s*(\w+)\s*(.*?)\s*$")
MODULE_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
PATCH_DECORATOR = "add_to_class"


class ExportError(ValueError):
    """A notebook cannot be exported; the message names the notebook, the cell and the fix."""


@dataclass
class Piece:
    """One top-level statement group of an exported cell, or one method added to a class."""

    cell: int
    code: str
    owner: str | None = None  # the class a method is added to


@dataclass
class Module:
    name: str
    notebook: str  # path relative to the repository root, e.g. notebooks/01_attention.ipynb
    cells: list[str] = field(default_factory=list)  # exported cells' code, directives removed
    cell_numbers: list[int] = field(default_factory=list)

    def pieces(self) -> list[Piece]:
        """Split each cell into top-level code and methods meant for a class (`@add_to_class`)."""
        pieces: list[Piece] = []
        for number, code in zip(self.cell_numbers or range(1, len(self.cells) + 1), self.cells):
            lines = code.split("\n")
            plain: list[str] = []
            for node in ast.parse(code).body:
                owner, decorator = _patched_class(node)
                start = (
                    node.decorator_list[0].lineno
                    if getattr(node, "decorator_list", None)
                    else node.lineno
                ) - 1
                if owner is None:
                    continue
                plain.append((start, node.end_lineno, owner, decorator))
            cursor = 0
            for start, end, owner, decorator in plain:
                # leading comments above the decorator belong to the method
                head = start
                while head > cursor and lines[head - 1].lstrip().startswith("#"):
                    head -= 1
                if "\n".join(lines[cursor:head]).strip():
                    pieces.append(Piece(number, "\n".join(lines[cursor:head]).strip("\n")))
                body = [
                    line
                    for i, line in enumerate(lines[head:end], start=head + 1)
                    if i not in range(decorator.lineno, decorator.end_lineno + 1)
                ]
                pieces.append(Piece(number, "\n".join(body).strip("\n"), owner))
                cursor = end
            if "\n".join(lines[cursor:]).strip():
                pieces.append(Piece(number, "\n".join(lines[cursor:]).strip("\n")))
        return pieces

    def public_names(self) -> list[str]:
        names: list[str] = []
        for piece in self.pieces():
            if piece.owner is not None:
                continue
            for node in ast.parse(piece.code).body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    names.append(node.name)
                elif isinstance(node, ast.Assign | ast.AnnAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names += [t.id for t in targets if isinstance(t, ast.Name)]
        public = [n for n in names if not n.startswith("_")]
        return list(dict.fromkeys(public))  # unique, in order of definition

    def render(self) -> str:
        """The module's text: header, `__all__`, then each piece with methods inside their class."""
        pieces = self.pieces()
        defined: dict[str, int] = {}  # class name -> index of the piece that defines it
        for index, piece in enumerate(pieces):
            if piece.owner is None:
                for node in ast.parse(piece.code).body:
                    if isinstance(node, ast.ClassDef):
                        defined[node.name] = index
        methods: dict[str, list[Piece]] = {}
        for index, piece in enumerate(pieces):
            if piece.owner is None:
                continue
            if piece.owner not in defined or defined[piece.owner] > index:
                raise ExportError(
                    f"{self.notebook}, cell {piece.cell}: @{PATCH_DECORATOR}({piece.owner}) adds "
                    f"to a class that no earlier exported cell of module '{self.name}' defines; "
                    "export the class first, in the same module"
                )
            methods.setdefault(piece.owner, []).append(piece)
        names = [f'"{n}"' for n in self.public_names()]
        parts = [HEADER.format(notebook=self.notebook) + "\n" + f"__all__ = [{', '.join(names)}]"]
        for piece in pieces:
            if piece.owner is None:
                parts.append(f"# cell {piece.cell}\n{_insert_methods(piece.code, methods)}")
        return _ruff_format("\n\n\n".join(parts) + "\n", f"tinylm_core/{self.name}.py")


def _insert_methods(code: str, methods: dict[str, list[Piece]]) -> str:
    """`code` with each added method placed at the end of its class's body."""
    lines = code.split("\n")
    classes = [n for n in ast.parse(code).body if isinstance(n, ast.ClassDef) and n.name in methods]
    for node in sorted(classes, key=lambda n: -n.end_lineno):  # from the bottom, so lines stay put
        added = []
        for method in methods[node.name]:
            body = "\n".join(
                ("    " + line) if line.strip() else "" for line in method.code.split("\n")
            )
            added += ["", f"    # cell {method.cell}", body]
        lines[node.end_lineno : node.end_lineno] = added
    return "\n".join(lines)


def _patched_class(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    """('Trainer', decorator) for a function decorated with @add_to_class(Trainer), else (None, None)."""
    for decorator in getattr(node, "decorator_list", []):
        if (
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Name)
            and decorator.func.id == PATCH_DECORATOR
        ):
            if len(decorator.args) != 1 or not isinstance(decorator.args[0], ast.Name):
                raise ExportError(
                    f"@{PATCH_DECORATOR} takes one class name, e.g. @{PATCH_DECORATOR}(Trainer)"
                )
            if decorator is not node.decorator_list[0]:
                raise ExportError(f"@{PATCH_DECORATOR}(...) must be the outermost decorator")
            return decorator.args[0].id, decorator
    return None, None


def _ruff_format(text: str, filename: str) -> str:
    """Format like the rest of the repository (`ruff format`, settings from pyproject.toml)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ruff", "format", "--stdin-filename", filename, "-"],
            input=text,
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
    except OSError as e:  # pragma: no cover - no Python to run
        raise ExportError(f"cannot run ruff to format {filename}: {e}") from e
    if done.returncode != 0:
        raise ExportError(
            f"ruff could not format {filename} ({done.stderr.strip() or 'is ruff installed?'}); "
            "install the dev tools with `make test` or `pip install -e .[dev]`"
        )
    return done.stdout


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def read_notebook(path: Path) -> dict[str, Module]:
    """Collect the exported cells of one notebook, by module name."""
    where = _relative(path)
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError) as e:
        raise ExportError(f"{where}: cannot be read as a notebook ({e})") from e
    default: str | None = None
    modules: dict[str, Module] = {}
    for index, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        lines = _cell_source(cell).splitlines()
        directives = []
        while lines and DIRECTIVE_RE.match(lines[0]):
            directives.append(DIRECTIVE_RE.match(lines.pop(0)).groups())
        for name, argument in directives:
            if name == "default_exp":
                if not MODULE_NAME_RE.match(argument):
                    raise ExportError(
                        f"{where}, cell {index}: '#| default_exp {argument}' is not a valid module "
                        "name; use a lower-case Python identifier such as 'attention'"
                    )
                default = argument
        exports = [arg for name, arg in directives if name == "export"]
        if not exports:
            continue
        target = exports[0] or default
        if target is None:
            raise ExportError(
                f"{where}, cell {index}: '#| export' comes before any '#| default_exp'; "
                "add a '#| default_exp <module>' cell above it"
            )
        if not MODULE_NAME_RE.match(target):
            raise ExportError(f"{where}, cell {index}: '#| export {target}' is not a module name")
        code = "\n".join(lines)
        try:
            compile(code, f"{where}, cell {index}", "exec")
            module = modules.setdefault(target, Module(target, where))
            module.cells.append(code)
            module.cell_numbers.append(index)
            module.pieces()
        except SyntaxError as e:
            raise ExportError(
                f"{where}, cell {index}, line {e.lineno}: syntax error in an exported cell "
                f"({e.msg}); fix the cell, then export again"
            ) from e
        except ExportError as e:
            raise ExportError(f"{where}, cell {index}: {e}") from e
    return modules


def collect(notebooks: list[Path]) -> dict[str, Module]:
    """Read every notebook; refuse two notebooks that export into the same module."""
    modules: dict[str, Module] = {}
    for path in notebooks:
        for name, module in read_notebook(path).items():
            if name in modules:
                raise ExportError(
                    f"module tinylm_core/{name}.py is claimed by both {modules[name].notebook} and "
                    f"{module.notebook}; each module must come from one notebook"
                )
            if name.startswith("_") or name in {"__init__", "__main__"}:
                raise ExportError(f"{module.notebook}: module name '{name}' is reserved")
            modules[name] = module
    return modules


def find_notebooks(notebook_dir: Path | None = None) -> list[Path]:
    notebook_dir = NOTEBOOK_DIR if notebook_dir is None else notebook_dir
    notebooks = sorted(notebook_dir.glob(NOTEBOOK_GLOB))
    if not notebooks:
        raise ExportError(
            f"no notebooks matching {NOTEBOOK_GLOB} in {notebook_dir}: the exporter runs from a "
            "clone of the tinylm repository (`make export`), not from an installed package"
        )
    return notebooks


def plan_export(
    notebooks: list[Path] | None = None, package_dir: Path | None = None
) -> dict[Path, str]:
    """What an export would write: path -> new text. Only modules of `notebooks` (default: all)."""
    package_dir = PACKAGE_DIR if package_dir is None else package_dir
    everything = find_notebooks()
    chosen = everything if notebooks is None else [Path(p) for p in notebooks]
    modules = collect(chosen)
    if notebooks is not None:  # a partial export must not steal a module another notebook owns
        chosen_resolved = {p.resolve() for p in chosen}
        collect(
            chosen + [p for p in everything if p.resolve() not in chosen_resolved and _safe_read(p)]
        )
    return {package_dir / f"{name}.py": module.render() for name, module in modules.items()}


def stale_modules(package_dir: Path | None = None) -> list[Path]:
    """Generated modules (by their header) that no notebook exports any more."""
    package_dir = PACKAGE_DIR if package_dir is None else package_dir
    exported = set(collect(find_notebooks()))
    return [
        path
        for path in sorted(package_dir.glob("*.py"))
        if HEADER_RE.match(path.read_text(encoding="utf-8")) and path.stem not in exported
    ]


def _safe_read(path: Path) -> bool:
    try:
        read_notebook(path)
        return True
    except ExportError:
        return False


def write_plan(plan: dict[Path, str]) -> list[Path]:
    """Apply a plan; returns the files that changed. Each file is replaced atomically."""
    changed = []
    for path, text in plan.items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        tmp = path.with_name(f".{path.name}.export-tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        changed.append(path)
    return changed


KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled")


def lab_saved_text(notebook: dict) -> str:
    """The notebook as JupyterLab saves it, without metadata that changes on every run.

    Lab writes with nbformat (keys sorted, indent 1, sources split into lines, UTF-8, a final
    newline) and names the kernel "Python 3 (ipykernel)"; nbconvert adds per-cell timing
    ("execution") that Lab would rewrite. A notebook committed in this form opens unmodified.
    """
    import nbformat  # installed with JupyterLab (the course and dev extras)

    notebook["metadata"]["kernelspec"] = dict(KERNELSPEC)
    for cell in notebook["cells"]:
        for key in VOLATILE_CELL_METADATA:
            cell.get("metadata", {}).pop(key, None)
    text = nbformat.writes(nbformat.from_dict(notebook), version=4)
    return text if text.endswith("\n") else text + "\n"


def normalize_notebooks(notebooks: list[Path]) -> list[Path]:
    """Rewrite notebooks whose saved form differs from `lab_saved_text`; returns those changed."""
    changed = []
    for path in notebooks:
        text = path.read_text(encoding="utf-8")
        clean = lab_saved_text(json.loads(text))
        if clean != text:
            tmp = path.with_name(f".{path.name}.export-tmp")
            tmp.write_text(clean, encoding="utf-8")
            tmp.replace(path)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        plan = plan_export([Path(a) for a in args] if args else None)
        stale = stale_modules()
    except ExportError as e:
        print(f"export failed, nothing written: {e}", file=sys.stderr)
        return 1
    changed = write_plan(plan)
    chosen = [Path(a) for a in args] if args else find_notebooks()
    for path in normalize_notebooks(chosen):
        print(f"normalized {_relative(path)} (kernel name, timing metadata)")
    for path in changed:
        print(f"wrote {_relative(path)}")
    if not changed:
        print("tinylm_core is up to date with the notebooks")
    for path in stale:
        print(
            f"stale: {_relative(path)} is generated but no notebook exports it; delete it (git rm)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

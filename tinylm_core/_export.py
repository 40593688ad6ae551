"""Export `#| export` cells from the course notebooks into the `tinylm_core` package.

This file is written by hand (it is the tool, not a lesson). The directive syntax is nbdev's:

    #| default_exp attention      <- in any cell: this notebook's module is tinylm_core/attention.py
    #| export                     <- a code cell starting with this is copied into that module
    #| export data                <- ... or into tinylm_core/data.py instead

Cells are copied in notebook order, directive lines removed. Each generated module starts with a
header naming its notebook and gets an `__all__` of its public top-level names;
`tinylm_core/__init__.py` is regenerated to re-export every module's `__all__`.

    python -m tinylm_core._export                 # all notebooks (what `make export` runs)
    python -m tinylm_core._export notebooks/03_*.ipynb   # only these notebooks' modules

Everything is checked before anything is written: a syntax error, two notebooks claiming the same
module, or an `#| export` cell before `#| default_exp` raises `ExportError` and writes nothing.
"""

from __future__ import annotations

import ast
import json
import re
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


class ExportError(ValueError):
    """A notebook cannot be exported; the message names the notebook, the cell and the fix."""


@dataclass
class Module:
    name: str
    notebook: str  # path relative to the repository root, e.g. notebooks/01_attention.ipynb
    cells: list[str] = field(default_factory=list)

    def public_names(self) -> list[str]:
        names: list[str] = []
        for cell in self.cells:
            for node in ast.parse(cell).body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    names.append(node.name)
                elif isinstance(node, ast.Assign | ast.AnnAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names += [t.id for t in targets if isinstance(t, ast.Name)]
        public = [n for n in names if not n.startswith("_")]
        return list(dict.fromkeys(public))  # unique, in order of definition

    def render(self) -> str:
        names = [f'"{n}"' for n in self.public_names()]
        listing = f"__all__ = [{', '.join(names)}]"
        if len(listing) > 100:  # wrapped as ruff format would
            listing = "__all__ = [\n" + "".join(f"    {n},\n" for n in names) + "]"
        parts = [HEADER.format(notebook=self.notebook) + "\n" + listing]
        parts += [cell.strip("\n") for cell in self.cells]
        return "\n\n\n".join(parts) + "\n"


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
        except SyntaxError as e:
            raise ExportError(
                f"{where}, cell {index}, line {e.lineno}: syntax error in an exported cell "
                f"({e.msg}); fix the cell, then export again"
            ) from e
        modules.setdefault(target, Module(target, where)).cells.append(code)
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


def render_init(module_files: dict[str, str]) -> str:
    """`__init__.py` re-exporting the `__all__` of each generated module (in notebook order)."""
    entries = []
    for name, text in module_files.items():
        match = HEADER_RE.match(text)
        if not match:
            continue
        exported = next(
            (
                ast.literal_eval(node.value)
                for node in ast.parse(text).body
                if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            ),
            [],
        )
        entries.append((match.group(1), name, exported))
    lines = [
        '"""tinylm_core: a small language model built from scratch, exported from the tinylm notebooks.',
        "",
        "Every name below is re-exported from the module its notebook generated, so",
        "`from tinylm_core import MultiHeadAttention` works as well as the full module path.",
        '"""',
        "",
        "# This file is generated by `make export` from the modules' __all__ lists. Do not edit it.",
        "",
    ]
    all_names: list[str] = []
    for _notebook, name, exported in sorted(entries):
        if not exported:
            continue
        clash = sorted(set(exported) & set(all_names))
        if clash:
            raise ExportError(f"tinylm_core/{name}.py exports {clash}, already exported elsewhere")
        all_names += exported
        imports = f"from .{name} import {', '.join(exported)}"
        if len(imports) > 100:
            imports = f"from .{name} import (\n" + "".join(f"    {n},\n" for n in exported) + ")"
        lines.append(imports)
    lines += ["", "__all__ = ["] + [f'    "{n}",' for n in all_names] + ["]", ""]
    if not all_names:
        lines[-4:] = ["__all__ = []", ""]
    return "\n".join(lines)


def plan_export(
    notebooks: list[Path] | None = None, package_dir: Path = PACKAGE_DIR
) -> dict[Path, str | None]:
    """What an export would write: path -> new text, or None for a stale generated module to remove.

    With `notebooks=None` every numbered notebook is exported and generated modules that no notebook
    claims any more are removed; with a list, only those notebooks' modules are rewritten.
    """
    everything = notebooks is None
    if everything:
        notebooks = sorted(NOTEBOOK_DIR.glob(NOTEBOOK_GLOB))
    modules = collect([Path(p) for p in notebooks])
    if not everything:  # a partial export must not steal a module another notebook owns
        others = sorted(
            set(NOTEBOOK_DIR.glob(NOTEBOOK_GLOB)) - {Path(p).resolve() for p in notebooks}
        )
        collect([Path(p) for p in notebooks] + [p for p in others if _safe_read(p)])
    plan: dict[Path, str | None] = {}
    module_files: dict[str, str] = {}
    for existing in sorted(package_dir.glob("*.py")):
        text = existing.read_text(encoding="utf-8")
        if HEADER_RE.match(text):
            module_files[existing.stem] = text
            if everything and existing.stem not in modules:
                plan[existing] = None
                del module_files[existing.stem]
    for name, module in modules.items():
        text = module.render()
        module_files[name] = text
        plan[package_dir / f"{name}.py"] = text
    plan[package_dir / "__init__.py"] = render_init(module_files)
    return plan


def _safe_read(path: Path) -> bool:
    try:
        read_notebook(path)
        return True
    except ExportError:
        return False


def write_plan(plan: dict[Path, str | None]) -> list[Path]:
    """Apply a plan; returns the files that changed. Each file is replaced atomically."""
    changed = []
    for path, text in plan.items():
        if text is None:
            path.unlink()
            changed.append(path)
            continue
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        tmp = path.with_suffix(".py.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        plan = plan_export([Path(a) for a in args] if args else None)
    except ExportError as e:
        print(f"export failed, nothing written: {e}", file=sys.stderr)
        return 1
    changed = write_plan(plan)
    for path in changed:
        print(f"{'removed' if plan[path] is None else 'wrote'} {_relative(path)}")
    if not changed:
        print("tinylm_core is up to date with the notebooks")
    return 0


if __name__ == "__main__":
    sys.exit(main())

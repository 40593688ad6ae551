"""The build edition: chosen exported functions and methods become exercises the students write.

The teacher lists the pieces in one JSON file (`tools/build_edition.json`), per lesson, by name:
`scaled_dot_product_attention` (a function), `MultiHeadAttention.attend` (a method, written in the
class body or in its own `@add_to_class` cell) or `LayerNorm` (every method of a class). Names, not
cell numbers, so the list survives cells moving. For each piece:

    "what": what to write (it goes into the stub's docstring),
    "checks": {"hidden_tests/test_build_01.py::test_name": points, ...}

The checks are pytest tests, relative to the config file's folder, run by the grader against the
student's package; they are never shipped. In the student edition each piece keeps its signature
and docstring; its body becomes `raise NotImplementedError("TODO(build NN): ...")`. The package
gets `_build.py` (tools/build_fallback.py) and `_reference.bin`, the pieces' reference code
compiled for the teacher's Python: an imported module whose piece is still a stub runs the
reference instead (see TEACHING.md for why the reference ships compiled).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import marshal
import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from tools import export as _export
from tools.classroom_markup import ClassroomError, export_directives

CONFIG = Path(__file__).resolve().parent / "build_edition.json"
FALLBACK_SOURCE = Path(__file__).resolve().parent / "build_fallback.py"
STUB_MARK = "TODO(build "
CLASS_PREFIX = "_reference_of_"
WRITTEN, STUB, MISSING = "written", "stub", "missing"


@dataclass
class Piece:
    lesson: str  # "01"
    name: str  # "scaled_dot_product_attention", "MultiHeadAttention.attend" or "LayerNorm"
    what: str
    checks: dict[str, int] = field(default_factory=dict)  # pytest node id (absolute) -> points

    @property
    def points(self) -> int:
        return sum(self.checks.values())

    @property
    def stub_line(self) -> str:
        message = f"{STUB_MARK}{self.lesson}): write {self.name}, as its docstring says"
        return f"raise NotImplementedError({json.dumps(message)})"


@dataclass
class Found:
    """One function of a piece in a notebook: the cell, and its def node in that cell's code."""

    cell_id: str
    module: str
    node: ast.FunctionDef
    owner: str | None  # the class of a method


def load_config(path: Path = CONFIG, release: tuple[str, ...] = ()) -> dict[str, list[Piece]]:
    """Pieces by lesson ("01"), in the config's order; lessons in `release` are left out."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        lessons = data["lessons"]
    except (OSError, ValueError, KeyError) as e:
        raise ClassroomError(f"{path}: cannot read the build edition's config ({e})") from e
    pieces: dict[str, list[Piece]] = {}
    for lesson, spec in lessons.items():
        if lesson in release:
            continue
        for name, piece in spec.get("pieces", {}).items():
            checks = {
                str((Path(path).parent / target.split("::")[0]).resolve())
                + "".join("::" + p for p in target.split("::")[1:]): int(points)
                for target, points in piece.get("checks", {}).items()
            }
            if not checks or not piece.get("what"):
                raise ClassroomError(
                    f"{path}: lesson {lesson}, piece {name!r} needs a 'what' text and at least "
                    "one check with its points"
                )
            pieces.setdefault(lesson, []).append(Piece(lesson, name, piece["what"], checks))
    return pieces


def hidden_files(pieces: dict[str, list[Piece]]) -> list[Path]:
    return sorted({Path(t.split("::")[0]) for ps in pieces.values() for p in ps for t in p.checks})


def _added_to(node: ast.stmt) -> str | None:
    for decorator in getattr(node, "decorator_list", []):
        if (
            isinstance(decorator, ast.Call)
            and getattr(decorator.func, "id", None) == _export.PATCH_DECORATOR
            and decorator.args
            and isinstance(decorator.args[0], ast.Name)
        ):
            return decorator.args[0].id
    return None


def find_piece(nb: nbformat.NotebookNode, name: str) -> list[Found]:
    """The functions of piece `name` in the exported cells of `nb` (empty when it is not there)."""
    owner, _, method = name.rpartition(".")
    found, default = [], None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        directives = export_directives(cell.source)
        default = directives.get("default_exp", default)
        if "export" not in directives:
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue  # the exporter reports it
        module = directives["export"] or default
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == (owner or name):
                found += [
                    Found(cell.id, module, item, node.name)
                    for item in node.body
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                    and (not owner or item.name == method)
                ]
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                added = _added_to(node)
                if added is None and not owner and node.name == name:
                    found.append(Found(cell.id, module, node, None))
                elif added is not None and added == (owner or name):
                    if not owner or node.name == method:
                        found.append(Found(cell.id, module, node, added))
    return found


def _span(node: ast.FunctionDef) -> tuple[int, int]:
    """0-based first line (decorators included) and end line (exclusive) of a def."""
    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    return first - 1, node.end_lineno


def _body_start(node: ast.FunctionDef) -> tuple[int, int]:
    """0-based first line of the body after the docstring, and the docstring's first line."""
    first = node.body[0]
    if first.lineno == node.lineno:
        raise ClassroomError(f"{node.name}: write the body on its own lines to make it a piece")
    has_doc = isinstance(first, ast.Expr) and isinstance(
        getattr(first, "value", None), ast.Constant
    )
    has_doc = has_doc and isinstance(first.value.value, str)
    return (first.end_lineno if has_doc else first.lineno - 1), first.lineno - 1


def is_stub(source: str, node: ast.FunctionDef) -> bool:
    lines = source.splitlines()[_span(node)[0] : _span(node)[1]]
    return any(STUB_MARK in line for line in lines)


def stub_cell(source: str, nodes: list[ast.FunctionDef], piece: Piece) -> tuple[str, set[int]]:
    """`source` with each def's body replaced by the stub; also the original lines hidden."""
    lines, hidden = source.splitlines(), set()
    for node in sorted(nodes, key=lambda n: -n.lineno):
        after_doc, doc_line = _body_start(node)
        indent = lines[doc_line][: len(lines[doc_line]) - len(lines[doc_line].lstrip())]
        doc = (ast.get_docstring(node) or "").strip()
        task = f"Build exercise (lesson {piece.lesson}, {piece.points} points): {piece.what}"
        task = "\n".join(textwrap.wrap(task, width=max(40, 96 - len(indent))))
        text = f"{doc}\n\n{task}" if doc else task
        text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
        wrapped = [indent + '"""' + text.splitlines()[0]]
        wrapped += [(indent + line) if line else "" for line in text.splitlines()[1:]]
        stub = wrapped + [indent + '"""', indent + piece.stub_line]
        hidden.update(range(after_doc, node.end_lineno))
        lines[doc_line : node.end_lineno] = stub
    return "\n".join(lines), hidden


def build_notebook(nb, name: str, pieces: list[Piece]) -> tuple[object, dict[tuple, set[int]]]:
    """The build-edition version of a (student) notebook and the teacher's lines it hides."""
    hidden: dict[tuple, set[int]] = {}
    by_id = {cell.get("id"): cell for cell in nb.cells}
    missing = [p.name for p in pieces if not find_piece(nb, p.name)]
    if missing:
        raise ClassroomError(
            f"{name}: the build edition's config names {', '.join(missing)}, which no exported "
            f"cell of the notebook defines; fix {CONFIG.name} (names are 'func', 'Class.method' "
            "or 'Class')"
        )
    for piece in pieces:
        by_cell: dict[str, list] = {}
        for found in find_piece(nb, piece.name):
            by_cell.setdefault(found.cell_id, []).append(found.node)
        for cell_id, nodes in by_cell.items():
            cell = by_id[cell_id]
            cell.source, lines = stub_cell(cell.source, nodes, piece)
            hidden.setdefault((name, cell_id), set()).update(lines)
            cell.outputs, cell.execution_count = [], None
    return nb, hidden


def piece_status(nb, piece: Piece) -> str:
    found = find_piece(nb, piece.name)
    if not found:
        return MISSING
    cells = {c.get("id"): c.source for c in nb.cells}
    return STUB if all(is_stub(cells[f.cell_id], f.node) for f in found) else WRITTEN


def fall_back(student_nb, teacher_nb, piece: Piece) -> None:
    """Put the teacher's code in place of the student's stubs of `piece` (grading only)."""
    theirs = {(f.owner, f.node.name): f for f in find_piece(teacher_nb, piece.name)}
    teacher_cells = {c.get("id"): c.source for c in teacher_nb.cells}
    cells = {c.get("id"): c for c in student_nb.cells}
    mine = find_piece(student_nb, piece.name)
    for found in sorted(mine, key=lambda f: -f.node.lineno):
        cell = cells[found.cell_id]
        ref = theirs.get((found.owner, found.node.name))
        if ref is None or not is_stub(cell.source, found.node):
            continue
        start, end = _span(ref.node)
        code = textwrap.dedent("\n".join(teacher_cells[ref.cell_id].splitlines()[start:end]))
        lines = cell.source.splitlines()
        first, last = _span(found.node)
        indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
        lines[first:last] = [(indent + line) if line else "" for line in code.splitlines()]
        cell.source = "\n".join(lines)
    done = {(f.owner, f.node.name) for f in mine}
    for key, ref in theirs.items():  # deleted by the student: the reference goes at the end
        if key not in done:
            start, end = _span(ref.node)
            code = textwrap.dedent("\n".join(teacher_cells[ref.cell_id].splitlines()[start:end]))
            if ref.owner and _added_to(ref.node) is None:
                code = f"@{_export.PATCH_DECORATOR}({ref.owner})\n{code}"
            student_nb.cells.append(nbformat.v4.new_code_cell(f"#| export {ref.module}\n{code}"))


def reference_code(teacher_nb, pieces: list[Piece]) -> dict[str, bytes]:
    """Per module, the pieces' reference definitions compiled (methods in a stand-in class)."""
    sources: dict[str, dict[str | None, list[str]]] = {}
    cells = {c.get("id"): c.source for c in teacher_nb.cells}
    for piece in pieces:
        for found in find_piece(teacher_nb, piece.name):
            start, end = _span(found.node)
            lines = cells[found.cell_id].splitlines()[start:end]
            code = textwrap.dedent("\n".join(lines))
            if _added_to(found.node):
                code = "\n".join(
                    line for line in code.splitlines() if f"@{_export.PATCH_DECORATOR}(" not in line
                )
            sources.setdefault(found.module, {}).setdefault(found.owner, []).append(code)
    compiled = {}
    for module, groups in sources.items():
        parts = list(groups.pop(None, []))
        for owner, methods in groups.items():
            body = "\n\n".join(textwrap.indent(m, "    ") for m in methods)
            parts.append(f"class {CLASS_PREFIX}{owner}:\n{body}")
        code = compile("\n\n\n".join(parts) + "\n", f"<reference: {module}>", "exec")
        compiled[module] = code
    return compiled


def add_fallback(package_dir: Path, compiled: dict) -> None:
    """Give a student package `_build.py`, `_reference.bin` and an `__init__` that loads them."""
    shutil.copy(FALLBACK_SOURCE, package_dir / "_build.py")
    data = {"magic": importlib.util.MAGIC_NUMBER, "modules": compiled}
    (package_dir / "_reference.bin").write_bytes(marshal.dumps(data))
    init = package_dir / "__init__.py"
    text = init.read_text(encoding="utf-8") if init.exists() else ""
    line = (
        "from . import _build  # noqa: F401  (build edition: the fallback for unwritten pieces)\n"
    )
    lines = text.splitlines(keepends=True)
    body = ast.parse(text).body
    after = 0  # below the docstring and `from __future__` imports
    for node in body:
        docstring = isinstance(node, ast.Expr) and isinstance(
            getattr(node, "value", None), ast.Constant
        )
        if docstring or (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            after = node.end_lineno
        else:
            break
    init.write_text("".join(lines[:after] + [line] + lines[after:]), encoding="utf-8")


def build_package(
    notebooks: list[Path], package_dir: Path, handwritten: Path, substitutes: dict | None = None
) -> dict[str, str]:
    """Export `notebooks` into a fresh `package_dir`, as `make export` would, plus the hand-written
    modules (`__init__.py`, `__main__.py`) copied from the `handwritten` package folder.

    Without `substitutes` any export error is raised (ExportError). With it (notebook name ->
    path of a notebook to export instead), a notebook that fails to export is replaced by its
    substitute; returns the failures by notebook name.
    """
    modules, failures = {}, {}
    for path in notebooks:
        try:
            found = _export.read_notebook(path)
            rendered = {
                name: _export.Module(
                    name, f"notebooks/{Path(m.notebook).name}", m.cells, m.cell_numbers
                ).render()
                for name, m in found.items()
            }
        except _export.ExportError as e:
            if substitutes is None or path.name not in substitutes:
                raise
            failures[path.name] = str(e)
            found = _export.read_notebook(substitutes[path.name])
            rendered = {
                name: _export.Module(name, m.notebook, m.cells, m.cell_numbers).render()
                for name, m in found.items()
            }
        for name in rendered:
            if name in modules:
                raise _export.ExportError(
                    f"module tinylm_core/{name}.py is claimed by two notebooks; each module must "
                    "come from one notebook"
                )
        modules.update(rendered)
    if package_dir.exists():
        shutil.rmtree(package_dir)
    package_dir.mkdir(parents=True)
    for source in sorted(handwritten.glob("*.py")):
        text = source.read_text(encoding="utf-8")
        if not _export.HEADER_RE.match(text):
            (package_dir / source.name).write_text(text, encoding="utf-8")
    for name, text in modules.items():
        (package_dir / f"{name}.py").write_text(text, encoding="utf-8")
    return failures

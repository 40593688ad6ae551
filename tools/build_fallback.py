"""The build edition's fallback: a piece you have not written yet runs the teacher's reference.

This file is copied into the student edition's package as `tinylm_core/_build.py` by
`make student EDITION=build` (tools/classroom.py); `tinylm_core/__init__.py` imports it first.

In the build edition some functions and methods of the package are yours to write: their body is
`raise NotImplementedError("TODO(build NN): ...")` until you write it. So that a later lesson works
before you have finished an earlier one, each module of the package is checked as it is imported:
a piece whose body is still that stub is replaced by the teacher's reference, and a warning names
it. Your notebook itself never falls back: there the stub raises until you write the body. The
grader does the same for pieces you left as stubs, reports them as "fallback", and gives them no
points. The reference ships as compiled Python code (`_reference.bin`) for one Python version; on
another version the fallback is off and the stub raises.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import marshal
import sys
import types
import warnings
from pathlib import Path

STUB_MARK = "TODO(build "
PACKAGE = __name__.rpartition(".")[0] or "tinylm_core"
REFERENCE_FILE = Path(__file__).with_name("_reference.bin")
CLASS_PREFIX = "_reference_of_"  # the reference's methods are compiled in a class of this name
USED: list[str] = []  # "module.piece" for each piece that fell back, in order


def is_stub(value) -> bool:
    """True for a function (or property, staticmethod...) whose body still raises the stub."""
    for function in _functions(value):
        consts = function.__code__.co_consts
        if any(isinstance(c, str) and c.startswith(STUB_MARK) for c in consts):
            return True
    return False


def _functions(value) -> list:
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if f is not None]
    if isinstance(value, staticmethod | classmethod):
        return [value.__func__]
    return [value] if isinstance(value, types.FunctionType) else []


def _rebind(function, cls):
    """`function` with its `__class__` cell (used by zero-argument super()) pointing at `cls`."""
    code = function.__code__
    if "__class__" not in code.co_freevars:
        return function
    cells = tuple(
        types.CellType(cls) if name == "__class__" else cell
        for name, cell in zip(code.co_freevars, function.__closure__)
    )
    new = types.FunctionType(
        code, function.__globals__, function.__name__, function.__defaults__, cells
    )
    new.__kwdefaults__, new.__qualname__ = (
        function.__kwdefaults__,
        f"{cls.__name__}.{function.__name__}",
    )
    return new


def _for_class(value, cls):
    if isinstance(value, property):
        parts = [value.fget, value.fset, value.fdel]
        return property(*[p and _rebind(p, cls) for p in parts], value.__doc__)
    if isinstance(value, staticmethod | classmethod):
        return type(value)(_rebind(value.__func__, cls))
    return _rebind(value, cls)


def _load_reference() -> dict:
    try:
        stored = marshal.loads(REFERENCE_FILE.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if stored.get("magic") != importlib.util.MAGIC_NUMBER:
        return {}  # compiled for another Python version
    return stored["modules"]


def patch(module: types.ModuleType) -> list[str]:
    """Replace the stubs (and missing pieces) of `module` by the reference; returns their names."""
    short = module.__name__.rpartition(".")[2]
    code = _load_reference().get(short)
    if code is None:
        return []
    reference: dict = {}
    exec(code, vars(module), reference)  # the reference's functions see this module's globals
    used = []
    for name, value in reference.items():
        if not name.startswith(CLASS_PREFIX):
            if is_stub(getattr(module, name, None)) or not hasattr(module, name):
                setattr(module, name, value)
                used.append(name)
            continue
        cls = getattr(module, name[len(CLASS_PREFIX) :], None)
        if not isinstance(cls, type):
            continue
        for attr, method in vars(value).items():
            if _functions(method) and (attr not in vars(cls) or is_stub(vars(cls)[attr])):
                setattr(cls, attr, _for_class(method, cls))
                used.append(f"{cls.__name__}.{attr}")
    if used:
        USED.extend(f"{short}.{name}" for name in used)
        warnings.warn(
            f"{module.__name__}: still to write, so the teacher's reference stands in for "
            f"{', '.join(used)} (not your work; the grader gives it no points)",
            stacklevel=2,
        )
    return used


class _Loader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the package's modules as usual, then patches each one right after it runs."""

    def find_spec(self, name, path=None, target=None):
        if not name.startswith(PACKAGE + ".") or name.count(".") != 1:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _Finder())

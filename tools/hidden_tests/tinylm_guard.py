"""What student code must not replace while it is graded, and a pytest plugin that enforces it.

The grader uses it twice. In a notebook's kernel, `snapshot()` runs before the first cell and
`check_kernel()` before each check cell: whatever was replaced is put back for the check and
reported. In pytest (`-p tinylm_guard`, for the hidden package checks): the snapshot is taken when
pytest starts, before the test files import the student's package; each test runs with the
originals put back, and fails when student code replaced one (at import or during the test). The
plugin also gives each test a time limit (TINYLM_CHECK_TIMEOUT seconds) and writes one result line
per test (TINYLM_CHECK_RESULTS).
"""

import builtins
import importlib
import json
import os
import signal
import sys

import pytest

# The functions checks compare with. Not all of torch: torch itself rewraps some functions when
# a submodule loads (torch._dynamo wraps torch.manual_seed), and that is no student's doing.
COMPARE = "allclose isclose equal all any isfinite isnan eq ne lt le gt ge abs max min sum mean"
GUARDED = {
    "math": None,  # every public name
    "torch": COMPARE.split(),
    "torch.testing": ["assert_close"],
    "torch.Tensor": COMPARE.split()
    + "__eq__ __ne__ __lt__ __le__ __gt__ __ge__ __bool__ __float__ __int__ __len__ item tolist".split(),
    "numpy": "allclose isclose array_equal all any isfinite abs".split(),
    "numpy.testing": "assert_allclose assert_array_equal assert_equal".split(),
}
IGNORED_BUILTINS = {"_", "__", "___", "input", "getpass", "__IPYTHON__", "display", "get_ipython"}
ALIASES = {"torch": "torch", "np": "numpy", "numpy": "numpy", "math": "math"}
_saved: dict = {}
_tampered: list[str] = []


def isolate() -> None:
    """Only the student's package may be imported: drop the finder of an editable install.

    `pip install -e .` of the teacher's repository adds a finder that serves `tinylm_core.x` from
    the teacher's folder whenever the student's package has no module `x`; a graded process must
    fail to import it instead.
    """
    sys.meta_path[:] = [
        finder
        for finder in sys.meta_path
        if not (
            "__editable__" in getattr(finder, "__module__", "") and "tinylm" in finder.__module__
        )
    ]


isolate()  # on import: this module is loaded before the student's package, in kernels and pytest


def snapshot() -> dict:
    """{name: (owner, {attribute: value})} for builtins and GUARDED; importing what is missing."""
    saved = {
        "builtins": (
            builtins,
            {k: v for k, v in vars(builtins).items() if k not in IGNORED_BUILTINS},
        )
    }
    for name, attributes in GUARDED.items():
        module_name, _, cls = name.partition(".Tensor")
        try:
            owner = importlib.import_module(module_name)
        except ImportError:
            continue
        owner = owner.Tensor if cls or name.endswith(".Tensor") else owner
        names = attributes or [k for k in vars(owner) if not k.startswith("_")]
        saved[name] = (owner, {k: vars(owner)[k] for k in names if k in vars(owner)})
    _saved.clear()
    _saved.update(saved)
    return saved


def restore(namespace: dict | None = None) -> list[str]:
    """Put back what was replaced since snapshot(); also `torch`, `np`... in `namespace`."""
    changed, missing = [], object()
    for name, (owner, saved) in _saved.items():
        current = vars(owner)
        for key, value in saved.items():
            if current.get(key, missing) is not value:
                changed.append(f"{name}.{key}")
                setattr(owner, key, value)
    for alias, module in ALIASES.items():
        if namespace and alias in namespace and module in sys.modules:
            if namespace[alias] is not sys.modules[module]:
                changed.append(f"the name {alias}")
                namespace[alias] = sys.modules[module]
    return changed


def check_kernel() -> None:
    """Run in the kernel before a check cell: restore, and print what was replaced."""
    changed = restore(vars(sys.modules["__main__"]))
    if changed:
        print("TAMPERED: " + ", ".join(changed))


def pytest_configure(config):
    snapshot()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    _tampered.extend(restore())  # replaced when the student's package was imported
    limit = float(os.environ.get("TINYLM_CHECK_TIMEOUT", "60"))

    def alarm(signum, frame):
        raise TimeoutError(f"the check ran past its time limit of {limit:g} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        result = yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    changed = _tampered + restore()
    if changed:
        raise AssertionError(
            f"the student's code replaced {', '.join(sorted(set(changed)))}; not counted"
        )
    return result


def pytest_runtest_logreport(report):
    path = os.environ.get("TINYLM_CHECK_RESULTS")
    if not path or (report.passed and report.when != "call") or report.skipped:
        return
    message = ""
    if report.failed:
        lines = report.longreprtext.splitlines()
        errors = [line[1:].strip() for line in lines if line.startswith("E ")]
        message = errors[0] if errors else (lines[-1] if lines else "failed")
    file, _, name = report.nodeid.partition("::")
    record = {"file": os.path.basename(file), "name": name, "outcome": report.outcome}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({**record, "when": report.when, "message": message}) + "\n")

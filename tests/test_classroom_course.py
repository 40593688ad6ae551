"""The build edition on the real course: every configured piece exists, nothing secret ships, the
hidden checks pass on the teacher's package and catch known bugs, and graded code sees only the
student's package. (tests/test_classroom_build.py tests the machinery on a toy course.)"""

import os
import shutil
from pathlib import Path

from tools import classroom as _classroom
from tools.classroom_build import CONFIG, load_config
from tools.classroom_grade import PLUGIN_DIR, run_package_checks

# --- the real course -------------------------------------------------------------------------------


def test_real_course_build_edition_names_existing_pieces_and_leaks_nothing(tmp_path):
    """Every piece in tools/build_edition.json exists in its lesson; nothing secret ships."""
    pieces = load_config(CONFIG)
    student = tmp_path / "student"
    exercises = _classroom.build_student(out=student, pieces=pieces)  # raises: missing name, leak
    assert all(e.checks for found in exercises.values() for e in found)
    assert (student / "tinylm_core" / "_reference.bin").exists()
    for lesson, listed in pieces.items():
        notebook = next((student / "notebooks").glob(f"{lesson}_*.ipynb")).read_text()
        for piece in listed:
            assert f"TODO(build {lesson}): write {piece.name}," in notebook


def test_real_hidden_checks_pass_on_the_reference_and_catch_known_bugs(tmp_path):
    """The teacher's package passes every hidden check; two classic bugs lose exactly their checks."""
    targets = [t for ps in load_config(CONFIG).values() for p in ps for t in p.checks]
    package = tmp_path / "tinylm_core"
    shutil.copytree(
        Path(_classroom.ROOT) / "tinylm_core", package, ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PLUGIN_DIR)])}
    results = run_package_checks(targets, tmp_path, env, 60)
    assert [t for t, (ok, _) in results.items() if not ok] == [], results
    bugs = {  # attention that ignores is_causal; BPE that merges the least frequent pair
        "attention.py": ("    if is_causal:\n", "    if False:\n"),
        "bpe_training.py": ("(-counts[p], p)", "(counts[p], p)"),
    }
    for name, (right, wrong) in bugs.items():
        text = (package / name).read_text()
        assert right in text, f"{name} changed: update this test's bug"
        (package / name).write_text(text.replace(right, wrong))
    failed = {
        t.rpartition("::")[2]
        for t, (ok, _) in run_package_checks(targets, tmp_path, env, 60).items()
        if not ok
    }
    assert failed == {
        "test_attention_is_causal_when_asked",
        "test_training_merges_the_most_frequent_pair_each_time",
    }


def test_graded_code_cannot_import_the_teachers_modules(tmp_path):
    """The teacher's editable install must not fill in a module missing from the student's package."""
    (tmp_path / "tinylm_core").mkdir()
    (tmp_path / "tinylm_core" / "__init__.py").write_text("")
    (tmp_path / "test_leak.py").write_text("def test_import():\n    import tinylm_core.notebook\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PLUGIN_DIR)])}
    target = str(tmp_path / "test_leak.py") + "::test_import"
    ok, message = run_package_checks([target], tmp_path, env, 30)[target]
    assert not ok and "No module named 'tinylm_core.notebook'" in message

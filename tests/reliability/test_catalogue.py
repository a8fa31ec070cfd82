"""The fault catalogue (``catalogue.py``) against the real command line: exit status, one line, no
traceback, no leftover, inputs unchanged, correct outputs."""
from __future__ import annotations

from collections import Counter

import pytest

from tests.reliability.catalogue import CASES
from tests.reliability.runner import check_folder, check_messages, mount_tmpfs, prepare, run_cli, snapshot, unmount

pytest.importorskip("onnx")


def params() -> list:
    return [pytest.param(case, id=f"{case.group}:{case.id}", marks=[pytest.mark.slow] if case.slow else [])
            for case in CASES]


def test_the_catalogue_covers_every_failure_class():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    assert len(CASES) >= 60
    groups = Counter(c.group for c in CASES)
    assert set(groups) == {"wrong-map", "read-error", "contract", "leftovers", "arguments", "resources", "disk-full"}
    assert sum(c.qgis is not None for c in CASES) >= 10


@pytest.mark.parametrize("case", params())
def test_case(case, tmp_path):
    folder = tmp_path / "case"
    prepare(case, folder)
    before = snapshot(folder)
    point = mount_tmpfs(case, folder)
    try:
        proc = run_cli(case, folder)
        check_messages(case, proc.returncode, proc.stdout, proc.stderr)
        check_folder(case, folder, before)
        if case.check is not None:
            case.check(folder)
    finally:
        unmount(point)

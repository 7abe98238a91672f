"""`rung --version` prints the installed package's version (the image test runs it too)."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from rung.cli import main


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"rung {version('rung')}"

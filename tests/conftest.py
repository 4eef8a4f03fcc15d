"""Shared fixtures: the firmware build (made once per session) and machines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# EMU_TEST_BUILD=DIR: build and test the firmware in DIR instead (e.g. work on the firmware
# without rebuilding the shared build/ under others' feet)
BUILD = Path(os.environ.get("EMU_TEST_BUILD") or ROOT / "build").resolve()
BOARDS = ("msp430fr5994", "cortex-m4-mram")


@pytest.fixture(scope="session")
def build_dir() -> Path:
    """The firmware build directory; runs `make firmware` (incremental) once."""
    subprocess.run(["make", "--no-print-directory", "-C", str(ROOT / "firmware"), f"BUILD={BUILD}",
                    f"PYTHON={sys.executable}"],
                   check=True, stdout=subprocess.DEVNULL)
    return BUILD


@pytest.fixture(scope="session")
def probe(build_dir):
    """Path of an assembly probe: probe(board, name)."""

    def path(board: str, name: str) -> Path:
        p = build_dir / "probes" / board / f"{name}.elf"
        assert p.exists(), f"probe {p} was not built"
        return p

    return path

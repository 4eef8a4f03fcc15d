"""pytest plugin (registered through the `pytest11` entry point): power-failure campaigns
and emulated machines as fixtures.

    @pytest.mark.emu_campaign("build/msp430fr5994/sort.elf", strategy="sample:500",
                              observe=["app_output"])
    def test_sort_survives_power_failures(campaign):
        result = campaign()
        assert result.all_correct        # on failure: first failures, source lines, reproducers

Fixtures:
  emu_machine  factory: emu_machine(elf, board=None, **Machine options) -> emu.Machine
  campaign     factory: campaign(elf=None, strategy=None, observe=None, **spec) -> CampaignResult;
               arguments left out come from the test's `emu_campaign` marker
Marker:
  emu_campaign(elf, strategy="exhaustive", observe=(), seed=0, max_factor=10.0, board=None)
Options:
  --emu-workers N   worker processes per campaign (default 1)
  --emu-report DIR  write each campaign's JSON result to DIR/<test id>.json
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .campaign import CampaignResult, CampaignSpec, Strategy, execute
from .machine import Machine


_RESULTS = pytest.StashKey[list]()


def pytest_addoption(parser):
    group = parser.getgroup("emu", "power-failure emulation")
    group.addoption("--emu-workers", type=int, default=1, metavar="N",
                    help="worker processes per campaign (default 1)")
    group.addoption("--emu-report", metavar="DIR", help="write each campaign's JSON result into DIR")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "emu_campaign(elf, strategy='exhaustive', observe=(), seed=0, max_factor=10.0, board=None): "
                   "the campaign the `campaign` fixture runs")


@pytest.fixture
def emu_machine():
    """Factory: emu_machine(elf, board=None, **options) -> a freshly flashed emu.Machine."""

    def make(elf, board: str | None = None, **options) -> Machine:
        return Machine.from_elf(elf, board, **options)

    return make


@pytest.fixture
def campaign(request):
    """Factory: campaign(...) -> CampaignResult; defaults from the test's emu_campaign marker."""
    marker = request.node.get_closest_marker("emu_campaign")
    defaults = dict(marker.kwargs) if marker else {}
    if marker and marker.args:
        defaults.setdefault("elf", marker.args[0])
    workers = request.config.getoption("--emu-workers")
    report = request.config.getoption("--emu-report")

    def run(elf=None, strategy=None, observe=None, seed=None, max_factor=None, board=None) -> CampaignResult:
        elf = elf if elf is not None else defaults.get("elf")
        if elf is None:
            raise pytest.UsageError("campaign(): give the ELF, or mark the test with emu_campaign(elf, ...)")
        spec = CampaignSpec(Path(elf), board or defaults.get("board"),
                            tuple(observe if observe is not None else defaults.get("observe", ())),
                            max_factor or defaults.get("max_factor", 10.0), "random",
                            seed if seed is not None else defaults.get("seed", 0))
        plan = Strategy.parse(strategy or defaults.get("strategy", "exhaustive"))
        c = spec.campaign()
        result = execute(c, spec, plan.points(c, seed=spec.seed), workers=workers, progress=False)
        request.node.stash.setdefault(_RESULTS, []).append(result)
        if report:
            out = Path(report)
            out.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
            (out / f"{name}.json").write_text(json.dumps(result.to_json(), indent=1))
        return result

    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    results = item.stash.get(_RESULTS, [])
    if report.when == "call" and report.failed and results:
        report.sections.append(("emu campaign", "\n\n".join(r.summary() for r in results)))

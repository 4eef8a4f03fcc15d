"""The HTML campaign report: its tables agree with the campaign, its reproducers replay
the failures they stand for, and headless Chromium renders the plot and the tables."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

import emu
from emu.campaign import CampaignSpec, execute, sample
from emu.report import write_report


@pytest.fixture(scope="module")
def report(build_dir, tmp_path_factory):
    spec = CampaignSpec(build_dir / "msp430fr5994" / "logger_broken.elf")
    campaign = spec.campaign()
    result = execute(campaign, spec, sample(campaign.golden_instructions, 1500, seed=4), progress=False)
    assert result.outcomes["wrong_output"] > 0
    return result, write_report(result, tmp_path_factory.mktemp("report"))


def rows(page: str, table: str) -> list[list[str]]:
    body = re.search(rf'<table id="{table}">(.*?)</table>', page, re.S).group(1)
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)][1:]


def test_tables_agree_with_the_campaign(report):
    result, path = report
    page = path.read_text()
    assert {name: int(n.replace(",", "")) for name, n in rows(page, "outcomes")} == result.outcomes
    by_function = rows(page, "functions")
    assert sum(int(c.replace(",", "")) for r in by_function for c in r[1:]) == len(result.trials)
    lines = rows(page, "lines")
    assert sum(int(r[2].replace(",", "")) for r in lines) == len(result.failures)
    assert all(r[0].startswith("apps/logger/main.c:") or r[0].startswith("runtime/") for r in lines)
    assert "<svg" in page and page.count("<table") == 4


def test_each_class_reproducer_replays_its_failure(report):
    result, path = report
    for outcome, count, observed, command in rows(path.read_text(), "classes"):
        args = command.split()[1:] + ["--json"]
        out = subprocess.run([sys.executable, "-m", "emu", *args], capture_output=True, text=True)
        replay = emu.protocol.last_result(bytes.fromhex(__import__("json").loads(out.stdout)["uart"]))
        assert outcome == "wrong_output" and f"result = {replay.output.hex()}" in observed


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is installed by `make test`")
def test_chromium_renders_plot_and_tables(report, tmp_path):
    _, path = report
    chromium = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(chromium + ["--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
    assert 'id="functions"' in dom.stdout and "<svg" in dom.stdout and "wrong_output" in dom.stdout
    shot = tmp_path / "page.png"
    subprocess.run(chromium + [f"--screenshot={shot}", "--window-size=1200,900", path.as_uri()],
                   capture_output=True, timeout=120, check=True)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    # the plot draws red (wrong_output) marks: some pixels are strongly red
    red = (pixels[..., 0] > 0.7) & (pixels[..., 1] < 0.35) & (pixels[..., 2] < 0.35)
    assert pixels.shape[0] >= 800 and red.sum() > 20

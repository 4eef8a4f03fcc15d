"""Campaigns against an independent, deliberately simple reference: a fresh machine per
k, run from reset with --fail-after k. Real toolchains, real engines."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

import emu
from emu.campaign import Campaign, CampaignSpec, Strategy, double, execute, exhaustive, nv_writers, read_schedules
from emu.results import ResultStore
from emu.errors import EmuError
from tests import asm

pytestmark = pytest.mark.skipif(shutil.which("clang") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="toolchains missing")

# A write-after-read hazard: counter is read, incremented and written back in place. A
# failure after the write (before the next checkpoint-free instruction completes) makes
# the rerun increment it again.
MSP430_WAR = """
    .section .text,"ax"
    .globl _start
_start:
    mov &counter, r5          ; 1  read NV
    add #1, r5                ; 2
    mov r5, &counter          ; 3  write it back in place
    mov r5, &result           ; 4
1:  jmp 1b
    .section .nv,"aw"
    .globl counter, result
    .type counter, @object
    .size counter, 2
counter: .word 0
    .type result, @object
    .size result, 2
result:  .word 0
    .section .vectors,"ax"
    .word _start
"""

CORTEX_WAR = r"""
#include <stdint.h>
__attribute__((section(".mram"))) volatile uint32_t counter, result, done;
void reset(void);
__attribute__((section(".isr"))) const void *vectors[] = {(void *)0x20020000, (void *)reset};
void reset(void)
{
    uint32_t c = counter + 1;      /* read ... */
    counter = c;                   /* ... then write in place: not idempotent */
    for (volatile int i = 0; i < 5; i++) {}
    result = c * 3;
    done = 1;
    for (;;) {}
}
"""


def naive(elf, observe, k):
    """The slow reference: new machine, run from reset, compare with a golden run."""
    golden = emu.Machine.from_elf(elf, observe=observe).run()
    r = emu.Machine.from_elf(elf, observe=observe, max_instructions=10 * golden.instructions).run(fail_after=[k])
    if r.outcome != "completed":
        return r.outcome
    return "correct" if r.reads == golden.reads else "wrong_output"


@pytest.fixture(scope="module", params=["msp430", "cortex"])
def war(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "msp430":
        return asm.msp430(tmp, MSP430_WAR, "war"), ["counter", "result"]
    return asm.cortex_c(tmp, CORTEX_WAR, "war"), ["counter:4", "result:4"]


def test_campaign_matches_the_naive_reference_at_every_k(war):
    elf, observe = war
    campaign = Campaign(emu.Machine.from_elf(elf), observe=observe)
    n = campaign.golden_instructions
    result = campaign.run(exhaustive(n))
    assert len(result.trials) == n - 1
    reference = {k: naive(elf, observe, k) for k in range(1, n)}
    assert {t.at: t.outcome for t in result.trials} == reference
    assert not result.all_correct  # the hazard is found


def test_msp430_war_fails_exactly_after_the_in_place_write(tmp_path):
    elf = asm.msp430(tmp_path, MSP430_WAR, "war")
    result = Campaign(emu.Machine.from_elf(elf), observe=["counter", "result"]).run(range(1, 4))
    # k = 3: counter = 1 survived the failure, the rerun makes it 2 (golden: 1)
    assert [(t.at, t.outcome) for t in result.trials] == [(1, "correct"), (2, "correct"), (3, "wrong_output")]
    bad = result.failures[0]
    assert bad.observed["counter"] == (2).to_bytes(2, "little") and bad.pc == 0x4400 + 4 + 2 + 4
    assert result.expected == {"counter": (1).to_bytes(2, "little"), "result": (1).to_bytes(2, "little")}


def test_correct_demo_passes_an_exhaustive_campaign(build_dir):
    for board in ("msp430fr5994", "cortex-m4-mram"):
        c = Campaign(emu.Machine.from_elf(build_dir / board / "demo.elf"), observe=["result"])
        r = c.run(exhaustive(c.golden_instructions))
        assert r.all_correct, r.summary()


def test_cli_json_and_exit_codes(war):
    elf, observe = war
    args = [sys.executable, "-m", "emu", "campaign", str(elf), "--exhaustive", "--json"]
    for spec in observe:
        args += ["--observe", spec]
    out = subprocess.run(args, capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)
    assert data["trials"] == data["golden_instructions"] - 1 == sum(data["outcomes"].values())
    assert data["failures"] and data["failures"] == sorted(data["failures"], key=lambda f: f["at"])
    first = data["failures"][0]
    assert first["reproduce"].startswith(f"emu run {elf}") and f"--fail-after {first['at']}" in first["reproduce"]
    # the reproducer replays the trial: same observed bytes
    replay = subprocess.run([sys.executable, "-m"] + first["reproduce"].split()[:1] + first["reproduce"].split()[1:]
                            + ["--json"], capture_output=True, text=True)
    assert json.loads(replay.stdout)["reads"] == first["observed"]
    bad = subprocess.run([sys.executable, "-m", "emu", "campaign", str(elf), "--range", "5:2"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "empty range" in bad.stderr


def test_schedules_match_the_naive_reference(war, tmp_path):
    """Two-failure trials (as --double and --schedule make them) give the outcome that a
    fresh machine run from reset with the same --fail-after gives."""
    elf, observe = war
    c = Campaign(emu.Machine.from_elf(elf), observe=observe)
    points = double(c.golden_instructions, 60, seed=3, window=c.boot_instructions + 40)
    assert len(set(points)) == 60 and all(k2 <= c.boot_instructions + 40 for _, k2 in points)
    result = c.run(points)
    for t in result.trials:
        m = emu.Machine.from_elf(elf, observe=observe)
        r = m.run(fail_after=list(t.at), max_instructions=c.limit)
        naive = "correct" if r.outcome == "completed" and r.reads == c.expected else (
            "wrong_output" if r.outcome == "completed" else r.outcome)
        assert t.outcome == naive, t.at
    schedule = tmp_path / "schedules.txt"
    schedule.write_text("# two trials\n3\n2, 5\n")
    assert read_schedules(schedule) == [(3,), (2, 5)]
    schedule.write_text("2,x\n")
    with pytest.raises(EmuError, match="schedules.txt:1: expected K1,K2"):
        read_schedules(schedule)


def test_workers_give_the_same_trials_as_one_process(build_dir, tmp_path):
    spec = CampaignSpec(build_dir / "cortex-m4-mram" / "checksum_broken.elf")
    c = spec.campaign()
    points = list(range(900, 1300)) + [(1200, 40), (1250, 9)]
    alone = execute(c, spec, points, workers=1, progress=False)
    with ResultStore(tmp_path / "r.jsonl", spec.header(c.machine.board.name)) as store:
        pooled = execute(c, spec, points, workers=2, store=store, progress=False, pool_after=0)
    assert pooled.trials == alone.trials and len(store.finished) == len(points)
    assert 0 < alone.outcomes["wrong_output"] < len(points)


def test_resume_keeps_finished_trials_and_refuses_other_options(war, tmp_path, monkeypatch):
    elf, observe = war
    spec = CampaignSpec(elf, observe=tuple(observe))
    c = spec.campaign()
    points = exhaustive(c.golden_instructions)
    header = spec.header(c.machine.board.name)
    path = tmp_path / "r.jsonl"
    with ResultStore(path, header) as store:
        store.append([c.trial(k) for k in points[:5]])
    with path.open("a") as f:
        f.write('{"at": 7, "outc')  # a line cut short by SIGKILL
    ran = []
    real = Campaign.trials
    monkeypatch.setattr(Campaign, "trials", lambda self, batch: ran.extend(batch) or real(self, batch))
    with ResultStore(path, header, resume=True) as store:
        result = execute(c, spec, points, store=store, progress=False)
    assert ran == points[5:]  # nothing repeated
    assert result.trials == execute(c, spec, points, progress=False).trials  # nothing lost
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + len(points) and all(json.loads(line) for line in lines)
    other = CampaignSpec(elf, observe=tuple(observe), max_factor=3.0).header(c.machine.board.name)
    with pytest.raises(EmuError, match="made for different options"):
        ResultStore(path, other, resume=True)


def test_cli_killed_and_resumed_loses_and_repeats_nothing(build_dir, tmp_path):
    elf = build_dir / "cortex-m4-mram" / "checksum.elf"
    results = tmp_path / "r.jsonl"
    args = [sys.executable, "-m", "emu", "campaign", str(elf), "--range", "1:6000", "--workers", "1",
            "--results", str(results), "--json"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not results.exists() or results.stat().st_size < 20_000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = len(results.read_text().splitlines()) - 1
    assert 0 < kept < 5999
    out = subprocess.run(args + ["--resume"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["outcomes"]["correct"] == 5999
    ats = [json.loads(line)["at"] for line in results.read_text().splitlines()[1:]]
    assert sorted(ats) == list(range(1, 6000))  # each trial once


def test_dask_cluster_gives_the_same_trials_as_the_local_pool(build_dir, tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = CampaignSpec(build_dir / "cortex-m4-mram" / "checksum_broken.elf")
    c = spec.campaign()
    points = list(range(900, 1200)) + [(1100, 30)]
    local = execute(c, spec, points, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        with ResultStore(tmp_path / "r.jsonl", spec.header(c.machine.board.name)) as store:
            remote = execute(c, spec, points, store=store, progress=False, scheduler=cluster.scheduler_address)
    assert remote.trials == local.trials and len(store.finished) == len(points)
    with pytest.raises(EmuError, match="cannot reach the Dask scheduler"):
        execute(c, spec, points[:40], progress=False, scheduler="tcp://127.0.0.1:9")


@pytest.mark.parametrize("board", ["msp430fr5994", "cortex-m4-mram"])
def test_nv_writers_match_a_sentinel_reference(build_dir, board):
    """Instructions that write non-volatile memory, found by write tracking, are exactly
    those that change the demo's .nv bytes when those are first filled with a sentinel
    pattern (two, so that no store can write the pattern's own value unnoticed)."""
    elf = build_dir / board / "demo.elf"
    m = emu.Machine.from_elf(elf)
    writers, n = nv_writers(m)
    start, end = m.resolve_address("__nv_start"), m.resolve_address("__nv_end")
    m.reset()
    m.power_on()
    reference, i = [], 0
    size = end - start
    sentinels = [bytes((0xA5 + 7 * j) & 0xFF for j in range(size)), bytes((0x3C + 11 * j) & 0xFF for j in range(size))]
    while True:
        here = m.snapshot()
        for fill in sentinels:  # different bytes everywhere: a copy inside .nv changes them too
            m.write_memory(start, fill)
            m.step(1)
            if m.read_memory(start, size) != fill:
                reference.append(i)
                m.restore(here)
                break
            m.restore(here)
        if m.step(1).kind != "limit":
            break
        i += 1
    # the last step retires the instruction before the final self-branch and reports the exit
    assert m.instructions == i + 1 == n and writers == reference and len(writers) > 300
    points = Strategy.parse("nv-writes").points(Campaign(m, observe=["result"]))
    assert points == sorted({k for w in writers for k in (w, w + 1) if 1 <= k < n})

"""The pytest plugin, driven through pytester: a passing campaign, a failing one whose
message names the failing source line and the reproducer, the machine fixture, and the
report option."""

from __future__ import annotations

import json

pytest_plugins = ["pytester"]


def test_campaign_marker_fixture_and_failure_message(pytester, build_dir):
    good = build_dir / "cortex-m4-mram" / "checksum.elf"
    broken = build_dir / "cortex-m4-mram" / "checksum_broken.elf"
    pytester.makepyfile(f'''
        import pytest

        @pytest.mark.emu_campaign("{good}", strategy="range:1000:1200", observe=["app_output"])
        def test_correct(campaign):
            result = campaign()
            assert len(result.trials) == 200
            assert result.all_correct

        @pytest.mark.emu_campaign("{broken}", strategy="range:1000:1200")
        def test_broken(campaign):
            assert campaign().all_correct

        def test_machine(emu_machine):
            m = emu_machine("{good}")
            assert m.run().waiting_for_input
            assert m.board.name == "cortex-m4-mram"
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider", "--emu-report", str(pytester.path / "reports"))
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_broken*", "*wrong_output before pc 0x* in resume (apps/checksum/main.c:*"
                                 "reproduce: emu run *checksum_broken.elf --board cortex-m4-mram --fail-after *"])
    report = json.loads((pytester.path / "reports" / "test_campaign_marker_fixture_and_failure_message.py_test_broken.json")
                        .read_text())
    assert report["trials"] == 200 and report["outcomes"]["wrong_output"] > 0


def test_workers_option_and_missing_elf(pytester, build_dir):
    elf = build_dir / "msp430fr5994" / "demo.elf"
    pytester.makepyfile(f'''
        def test_pooled(campaign):
            assert campaign("{elf}", strategy="sample:80", observe=["result"]).all_correct

        def test_no_elf(campaign):
            campaign()
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider", "--emu-workers", "2")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*give the ELF, or mark the test with emu_campaign*"])

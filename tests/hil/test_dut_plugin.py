"""The `dut` fixture: the same test file runs on the emulator and on a virtual-rack board,
chosen only by command-line options; hardware tests are skipped, saying why, without a rack.
(In subprocesses: pytester's in-process runs re-import modules, which icicle's PyO3 module
does not allow.)"""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

RACK = Path(__file__).resolve().parents[2] / "examples" / "rack-virtual.yaml"


def test_same_test_on_emu_and_on_a_rack_board(pytester, build_dir):
    vectors = build_dir / "vectors" / "msp430fr5994" / "checksum"
    pytester.makepyfile(f'''
        import pytest
        from pathlib import Path
        from emu.vectors import Vector

        BUILD = Path("{build_dir}")

        def test_checksum(dut):
            assert dut.board_type == "msp430fr5994"
            dut.flash(BUILD / dut.board_type / "checksum.elf")
            v = Vector.read("{vectors}/random-1")
            assert dut.host().run_job(v.input).output == v.expected_output
            outcome = dut.run_vector(Vector.read("{vectors}/default-failures"))
            assert outcome.passed, outcome
            print("BACKEND", dut.backend, dut.name)

        @pytest.mark.hil
        def test_needs_hardware(dut):
            assert dut.backend == "hil"
    ''')
    emu = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "-rs")
    emu.assert_outcomes(passed=1, skipped=1)
    emu.stdout.fnmatch_lines(["*BACKEND emu emu-msp430fr5994*",
                              "*needs a rack board: run with --backend hil --hil-rack FILE*"])
    hil = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--backend", "hil", "--hil-rack",
                             str(RACK), "--hil-board", "fr5994-rigol")
    hil.assert_outcomes(passed=2)
    hil.stdout.fnmatch_lines(["*BACKEND hil fr5994-rigol*"])
    no_rack = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", "--backend", "hil")
    no_rack.assert_outcomes(skipped=2)
    no_rack.stdout.fnmatch_lines(["*--backend hil needs a rack: pass --hil-rack FILE*"])

"""pytest plugin (entry point `pytest11: hil`): a `dut` fixture that is an emulated board or
a board of a rack, depending only on command-line options, in the style of pytest-embedded.

    def test_checksum(dut, build_dir):
        dut.flash(build_dir / dut.board_type / "checksum.elf")
        result = dut.host().run_job(bytes(range(256)))
        assert result.output == expected

    pytest                                      # on the emulator (emu.Machine)
    pytest --backend hil --hil-rack examples/rack-virtual.yaml --hil-board fr5994-rigol
    pytest --backend hil --hil-rack rack.yaml   # on the rack's first board

Options:
  --backend emu|hil   where `dut` runs (default emu)
  --hil-rack FILE     the rack YAML (docs/rack.md); without it, tests using `dut` on the hil
                      backend are skipped, saying so
  --hil-board NAME    which board of the rack (default: the first)
  --dut-board TYPE    the emulated board type on the emu backend (default msp430fr5994)
Marker:
  hil   a test that needs a rack board: skipped unless --backend hil is given

The `dut` object: `name`, `board_type`, `backend`, `flash(elf)`, `power_on()`,
`power_off()`, `power_cycle(off_time)`, `host()` (an `emu.host.Host`), `console` (read,
write, expect), `run_vector(vector)` -> `hil.runner.VectorOutcome`.

Public names: `EmuDut`, `HilDut`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["EmuDut", "HilDut"]


def pytest_addoption(parser):
    group = parser.getgroup("hil", "hardware in the loop (dut fixture)")
    group.addoption("--backend", choices=("emu", "hil"), default="emu",
                    help="run the dut fixture on the emulator (emu, default) or a rack board (hil)")
    group.addoption("--hil-rack", metavar="FILE", help="rack configuration (YAML) for --backend hil")
    group.addoption("--hil-board", metavar="NAME", help="board of the rack (default: the first)")
    group.addoption("--dut-board", metavar="TYPE", default="msp430fr5994",
                    help="emulated board type for --backend emu (default msp430fr5994)")


def pytest_configure(config):
    config.addinivalue_line("markers", "hil: needs a rack board; skipped unless --backend hil")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--backend") == "hil":
        return
    skip = pytest.mark.skip(reason="needs a rack board: run with --backend hil --hil-rack FILE")
    for item in items:
        if "hil" in item.keywords and item.get_closest_marker("hil") is not None:
            item.add_marker(skip)


class EmuDut:
    """The emulator as a device under test (`emu.Machine` through `MachineTransport`)."""

    backend = "emu"

    def __init__(self, board_type: str):
        from emu.boards import get_board

        self.board_type = get_board(board_type).name
        self.name = f"emu-{self.board_type}"
        self.machine = None
        self.transport = None
        self.console = None
        self.elf: Path | None = None
        self._host = None

    def flash(self, elf) -> None:
        from emu.host import MachineTransport
        from emu.machine import Machine

        from .console import TransportConsole

        self.elf = Path(elf)
        self.machine = Machine.from_elf(elf, self.board_type)
        self.transport = MachineTransport(self.machine)
        self.console = TransportConsole(self.transport, self.name)
        self._host = None

    def _need(self):
        if self.machine is None:
            raise pytest.UsageError("dut: flash(elf) first")
        return self.machine

    def power_on(self) -> None:
        self._need()  # the next read powers the machine on

    def power_off(self) -> None:
        self.transport.power_fail() if self._need() else None

    def power_cycle(self, off_time: float = 0.0) -> None:
        self.power_off()

    def host(self):
        from .board import RackHost

        self._need()
        if self._host is None:
            self._host = RackHost(self.console)
        return self._host

    def run_vector(self, vector):
        from emu.vectors import run_vector

        from .runner import VectorOutcome

        run = run_vector(vector, self.elf, via="uart", machine=self._need())
        self.transport = None if self.machine is None else type(self.transport)(self.machine)
        self._host = None
        from .console import TransportConsole

        self.console = TransportConsole(self.transport, self.name)
        return VectorOutcome(self.name, self.board_type, str(vector.path or vector.name),
                             f"{vector.firmware}/{vector.name}", 0,
                             "passed" if run.passed else "failed", output=run.output,
                             expected=vector.expected_output, exit=run.exit,
                             expected_exit=vector.exit)


class HilDut:
    """A rack board (`hil.board.Board`) as a device under test."""

    backend = "hil"

    def __init__(self, board):
        self.board = board
        self.name, self.board_type = board.name, board.board_type
        self.console = board.console

    def flash(self, elf) -> None:
        self.board.power.on()
        self.board.flash(elf)

    def power_on(self) -> None:
        self.board.power.on()

    def power_off(self) -> None:
        self.board.power.off()

    def power_cycle(self, off_time: float = 0.1) -> None:
        self.board.power.cycle(off_time)

    def host(self):
        return self.board.host()

    def run_vector(self, vector):
        from .runner import run_vector_on_board

        return run_vector_on_board(self.board, vector)


@pytest.fixture(scope="session")
def _hil_session(request):
    config = request.config
    if config.getoption("--backend") != "hil":
        yield None
        return
    rack_file = config.getoption("--hil-rack")
    if not rack_file:
        pytest.skip("--backend hil needs a rack: pass --hil-rack FILE (docs/rack.md)")
    from .rack import load_rack

    rack = load_rack(rack_file)
    name = config.getoption("--hil-board") or rack.boards[0].name
    with rack.session() as session:
        board = session.open_board(rack.board(name))
        yield board


@pytest.fixture
def dut(request, _hil_session):
    """The device under test: an emulated board (--backend emu) or a rack board (--backend hil)."""
    if request.config.getoption("--backend") == "hil":
        return HilDut(_hil_session)
    return EmuDut(request.config.getoption("--dut-board"))

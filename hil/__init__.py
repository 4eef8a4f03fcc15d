"""Hardware in the loop: real boards and the virtual rack (docs/hil.md, docs/rack.md).

* `hil.psu` — programmable power supplies (one entry point, `open_psu`);
  `hil.sim` — simulated instruments behind pseudo-terminals and loopback sockets.
* `hil.board` — the power, console and flash protocols and `Board` (flasher + console +
  power, `board.host()` an `emu.host.Host` on its console); `hil.power`, `hil.console`,
  `hil.flash` — their drivers.
* `hil.virtual` — a virtual board: `emu.Machine` behind a pty, powered by a simulated supply.
* `hil.rack` — the rack YAML file; `hil.runner` — running vectors on a rack (`hil run`,
  `hil.cli`); `hil.pytest_plugin` — the `dut` fixture.
"""

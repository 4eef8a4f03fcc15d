"""Byte links to instruments: PyVISA (pyvisa-py backend) for SCPI, pyserial for the rest.

A link sends one command and, for a query, returns one reply, with

* a timeout on every call (a missing reply raises `InstrumentTimeout` naming the command),
* the instrument's inter-command delay: the next command leaves no sooner than
  `command_delay` seconds after the previous exchange ended, measured on the monotonic clock,
* stale input dropped before each query, so a reply that arrived after an earlier timeout
  cannot be taken for the answer to the next question.

`VisaLink` opens any VISA resource string through `pyvisa.ResourceManager("@py")` (serial
`ASRL…::INSTR`, `USB…::INSTR` for USBTMC, `TCPIP::host::port::SOCKET`, `TCPIP::host::INSTR`);
it hand-writes no VISA transport. `SerialLink` is plain pyserial, for instruments that speak no
line-terminated protocol (the Korad KA3005P). PyVISA is imported only when a `VisaLink` is
opened, so the non-SCPI drivers work without it.

Public names: `SerialSettings`, `VisaLink`, `SerialLink`, `visa_resource`, `serial_port`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from typing import Any

from .errors import InstrumentError, InstrumentTimeout, PsuError

__all__ = ["SerialSettings", "VisaLink", "SerialLink", "visa_resource", "serial_port"]

_ASRL = re.compile(r"^ASRL(?P<port>.+?)(::INSTR)?$", re.IGNORECASE)


def visa_resource(resource: str) -> str:
    """A VISA resource string for `resource`: a serial device path (`/dev/ttyUSB0`, `COM3`)
    becomes `ASRL/dev/ttyUSB0::INSTR` / `ASRL3::INSTR`; anything else is returned as is."""
    if resource.startswith("/"):
        return f"ASRL{resource}::INSTR"
    m = re.fullmatch(r"COM(\d+)", resource, re.IGNORECASE)
    if m:
        return f"ASRL{m.group(1)}::INSTR"
    return resource


def serial_port(resource: str) -> str:
    """A pyserial port name for `resource`: `ASRL/dev/ttyUSB0::INSTR` becomes `/dev/ttyUSB0`,
    `ASRL3::INSTR` becomes `COM3`; a device path is returned as is."""
    m = _ASRL.match(resource)
    if not m:
        return resource
    port = m.group("port")
    return f"COM{port}" if port.isdigit() else port


@dataclass(frozen=True)
class SerialSettings:
    """Serial-line settings of an instrument's RS-232 / virtual COM port."""

    baud_rate: int = 9600
    data_bits: int = 8
    parity: str = "none"          # none | even | odd
    stop_bits: float = 1          # 1 | 1.5 | 2
    flow_control: str = "none"    # none | dtr_dsr | rts_cts | xon_xoff

    def with_options(self, options: dict[str, Any]) -> SerialSettings:
        """A copy with the serial options found in `options` (popped from it) applied."""
        fields = {k: options.pop(k) for k in ("baud_rate", "data_bits", "parity", "stop_bits",
                                               "flow_control") if k in options}
        return replace(self, **fields) if fields else self


class _Pacer:
    """Keeps the inter-command delay: `wait()` before sending, `done()` after an exchange.
    The first command also waits one delay: an earlier session may just have sent one."""

    def __init__(self, delay: float):
        self.delay = max(0.0, float(delay))
        self._ready_at = time.monotonic() + self.delay

    def wait(self) -> None:
        pause = self._ready_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)

    def done(self) -> None:
        self._ready_at = time.monotonic() + self.delay


class VisaLink:
    """One VISA session (pyvisa-py) with line-terminated commands and replies."""

    def __init__(self, resource: str, *, name: str, timeout: float, command_delay: float = 0.0,
                 read_termination: str = "\n", write_termination: str = "\n",
                 serial: SerialSettings | None = None):
        try:
            import pyvisa
            import pyvisa.constants as vc
        except ImportError as e:  # pragma: no cover - pyvisa is a dependency
            raise PsuError(f"{name}: SCPI instruments need PyVISA: pip install pyvisa pyvisa-py "
                           f"({e})") from e
        self.name, self.resource, self.timeout = name, resource, float(timeout)
        self._pyvisa = pyvisa
        self._pacer = _Pacer(command_delay)
        self._rm = pyvisa.ResourceManager("@py")
        try:
            self._inst = self._rm.open_resource(resource, timeout=max(1, round(self.timeout * 1000)),
                                                read_termination=read_termination,
                                                write_termination=write_termination)
        except Exception as e:  # VisaIOError, ValueError (bad resource string), OSError, ...
            raise PsuError(f"{name}: cannot open VISA resource {resource!r}: {e}. Check the "
                           f"resource string (e.g. ASRL/dev/ttyUSB0::INSTR, "
                           f"TCPIP::192.0.2.5::5025::SOCKET) and that the instrument is "
                           f"connected") from e
        self.is_serial = resource.upper().startswith("ASRL")
        self._stale = False
        if self.is_serial and serial is not None:
            parity = {"none": vc.Parity.none, "even": vc.Parity.even, "odd": vc.Parity.odd}
            stop = {1: vc.StopBits.one, 1.5: vc.StopBits.one_and_a_half, 2: vc.StopBits.two}
            flow = {"none": vc.VI_ASRL_FLOW_NONE, "dtr_dsr": vc.VI_ASRL_FLOW_DTR_DSR,
                    "rts_cts": vc.VI_ASRL_FLOW_RTS_CTS, "xon_xoff": vc.VI_ASRL_FLOW_XON_XOFF}
            try:
                self._inst.baud_rate = int(serial.baud_rate)
                self._inst.data_bits = int(serial.data_bits)
                self._inst.parity = parity[serial.parity]
                self._inst.stop_bits = stop[serial.stop_bits]
                self._inst.flow_control = flow[serial.flow_control]
            except KeyError as e:
                self.close()
                raise PsuError(f"{name}: bad serial setting {e}: parity is none|even|odd, "
                               f"stop_bits 1|1.5|2, flow_control none|dtr_dsr|rts_cts|xon_xoff") from e

    def _failure(self, command: str, e: Exception) -> InstrumentError:
        self._stale = True  # a late reply may still come: drop it before the next query
        if isinstance(e, self._pyvisa.errors.VisaIOError) and \
                e.error_code == self._pyvisa.constants.StatusCode.error_timeout:
            return InstrumentTimeout(self.name, command, self.timeout)
        return InstrumentError(self.name, command, "", f"I/O error: {e}")

    def _discard_input(self) -> None:
        # Cheap on a serial port, so always; on a socket it waits 0.1 s for stragglers, so
        # only after a failed exchange.
        if self.is_serial or self._stale:
            self._stale = False
            try:
                self._inst.flush(self._pyvisa.constants.BufferOperation.discard_read_buffer)
            except Exception:  # noqa: BLE001 - best effort; not every session can flush
                pass

    def write(self, command: str) -> None:
        """Send one command (the write termination is appended)."""
        self._pacer.wait()
        try:
            self._inst.write(command)
        except Exception as e:  # noqa: BLE001
            raise self._failure(command, e) from e
        finally:
            self._pacer.done()

    def query(self, command: str) -> str:
        """Send one query and return its reply without the termination."""
        self._pacer.wait()
        self._discard_input()
        try:
            self._inst.write(command)
            return self._inst.read().strip()
        except Exception as e:  # noqa: BLE001
            raise self._failure(command, e) from e
        finally:
            self._pacer.done()

    def close(self) -> None:
        """Close the session (idempotent). The resource manager stays open: PyVISA hands the
        same one to every link of the process, and closing it would close their sessions too."""
        inst, self._inst = getattr(self, "_inst", None), None
        if inst is not None:
            inst.close()


class SerialLink:
    """A pyserial port for a protocol without line terminators: the caller says how many reply
    bytes a query has, or the reply ends when the line stays quiet for `gap` seconds."""

    def __init__(self, port: str, *, name: str, timeout: float, command_delay: float = 0.0,
                 settings: SerialSettings = SerialSettings()):
        import serial

        self.name, self.port, self.timeout = name, port, float(timeout)
        self._pacer = _Pacer(command_delay)
        parity = {"none": serial.PARITY_NONE, "even": serial.PARITY_EVEN, "odd": serial.PARITY_ODD}
        try:
            self._ser = serial.Serial(port, baudrate=settings.baud_rate, bytesize=settings.data_bits,
                                      parity=parity[settings.parity], stopbits=settings.stop_bits,
                                      rtscts=settings.flow_control == "rts_cts",
                                      dsrdtr=settings.flow_control == "dtr_dsr",
                                      xonxoff=settings.flow_control == "xon_xoff",
                                      timeout=self.timeout, write_timeout=self.timeout)
        except (serial.SerialException, ValueError, KeyError) as e:
            raise PsuError(f"{name}: cannot open serial port {port!r}: {e}. Check the device path "
                           f"(e.g. /dev/ttyACM0) and its permissions") from e

    def write(self, command: str) -> None:
        """Send the command's bytes, nothing appended."""
        import serial

        self._pacer.wait()
        try:
            self._ser.write(command.encode("ascii"))
            self._ser.flush()
        except serial.SerialTimeoutException as e:
            raise InstrumentTimeout(self.name, command, self.timeout) from e
        except serial.SerialException as e:
            raise InstrumentError(self.name, command, "", f"I/O error: {e}") from e
        finally:
            self._pacer.done()

    def query(self, command: str, length: int | None = None, gap: float = 0.05) -> str:
        """Send `command` and return `length` reply bytes (or, with no length, the bytes that come
        until the line is quiet for `gap` seconds), decoded as Latin-1 so no byte is lost."""
        import serial

        self._pacer.wait()
        try:
            self._ser.reset_input_buffer()
            self._ser.write(command.encode("ascii"))
            self._ser.flush()
            reply = bytearray()
            deadline = time.monotonic() + self.timeout
            while length is None or len(reply) < length:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if length is not None:
                    self._ser.timeout = left
                    reply += self._ser.read(length - len(reply))
                    continue
                self._ser.timeout = min(left, gap) if reply else left
                chunk = self._ser.read(1)
                if not chunk:
                    if reply:
                        break  # the line stayed quiet: the reply is complete
                    continue
                reply += chunk + self._ser.read(self._ser.in_waiting)
        except serial.SerialException as e:
            raise InstrumentError(self.name, command, "", f"I/O error: {e}") from e
        finally:
            self._ser.timeout = self.timeout
            self._pacer.done()
        text = reply.decode("latin-1")
        if not reply or (length is not None and len(reply) < length):
            raise InstrumentTimeout(self.name, command, self.timeout, reply=text)
        return text

    def close(self) -> None:
        """Close the port (idempotent)."""
        self._ser.close()

"""Recorded harvester traces: CSV (time,power or time,voltage,current) and Shepherd HDF5.

Both become a `TraceHarvester`: sample i delivers power[i] = voltage[i] * current[i] (or
the recorded power) from times[i] until times[i+1]. Identical data give identical runs
whichever format it came in.

Shepherd files (https://github.com/orgua/shepherd, docs/user/data_format.md) hold the
datasets data/time, data/voltage and data/current; voltage and current are raw ADC values
converted with their `gain` and `offset` attributes (SI value = raw * gain + offset). Time
is in nanoseconds, or raw with gain/offset giving seconds in newer files. Reading them
needs the optional dependency h5py.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import EmuError
from .models import TraceHarvester

__all__ = ["load_trace", "read_csv_trace", "read_shepherd_trace"]

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


def load_trace(path: str | Path, loop: bool = False) -> TraceHarvester:
    """A trace harvester from a .csv or a Shepherd .h5/.hdf5 file."""
    path = Path(path)
    if not path.is_file():
        raise EmuError(f"harvester trace not found: {path}")
    if path.suffix.lower() in HDF5_SUFFIXES:
        times, power = read_shepherd_trace(path)
    else:
        times, power = read_csv_trace(path)
    return TraceHarvester(times, power, source=str(path), loop=loop)


def read_csv_trace(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(times in s, power in W) from CSV rows `time,power` or `time,voltage,current`.
    An optional header row names the columns (time, power, voltage, current, in any
    order; other columns are ignored); lines starting with # are comments."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise EmuError(f"cannot read harvester trace {path}: {exc}") from None
    rows = [(n, row) for n, row in enumerate(csv.reader(text.splitlines()), 1)
            if row and not row[0].lstrip().startswith("#") and any(cell.strip() for cell in row)]
    if not rows:
        raise EmuError(f"harvester trace {path} holds no samples; expected CSV rows time,power "
                       "or time,voltage,current")
    header = [cell.strip().lower() for cell in rows[0][1]]
    columns: dict[str, int]
    if not _is_number(header[0]):
        names = [h.split("[")[0].split("(")[0].strip() for h in header]
        columns = {name: i for i, name in enumerate(names) if name in ("time", "power", "voltage", "current")}
        rows = rows[1:]
        if "time" not in columns or not ("power" in columns or {"voltage", "current"} <= set(columns)):
            raise EmuError(f"harvester trace {path}: header {','.join(header)!r} needs the "
                           "columns time and power, or time, voltage and current")
    else:
        width = len(header)
        if width == 2:
            columns = {"time": 0, "power": 1}
        elif width == 3:
            columns = {"time": 0, "voltage": 1, "current": 2}
        else:
            raise EmuError(f"harvester trace {path}: line {rows[0][0]} has {width} columns; expected "
                           "time,power or time,voltage,current (or a header naming the columns)")
    wanted = ["time", "power"] if "power" in columns else ["time", "voltage", "current"]
    values = np.empty((len(rows), len(wanted)), dtype=np.float64)
    for i, (line, row) in enumerate(rows):
        for j, name in enumerate(wanted):
            try:
                values[i, j] = float(row[columns[name]])
            except (ValueError, IndexError):
                cell = row[columns[name]] if columns[name] < len(row) else ""
                raise EmuError(f"harvester trace {path}, line {line}: bad {name} {cell!r}; expected a "
                               "number in SI units (s, W, V, A)") from None
    power = values[:, 1] if len(wanted) == 2 else values[:, 1] * values[:, 2]
    return values[:, 0].copy(), np.ascontiguousarray(power)


def read_shepherd_trace(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(times in s, power in W) from a Shepherd recording (harvester IV samples)."""
    try:
        import h5py
    except ImportError:
        raise EmuError(f"reading the Shepherd HDF5 trace {path} needs h5py: pip install h5py "
                       "(or convert it to CSV time,voltage,current)") from None
    try:
        with h5py.File(path, "r") as f:
            if "data" not in f:
                raise EmuError(f"{path} is not a Shepherd recording: it has no group 'data' "
                               "(with datasets time, voltage, current)")
            data = f["data"]
            for name in ("time", "voltage", "current"):
                if name not in data:
                    raise EmuError(f"{path}: Shepherd dataset data/{name} is missing")
            datatype = data.attrs.get("datatype", b"ivsample")
            if isinstance(datatype, bytes):
                datatype = datatype.decode()
            if str(datatype) not in ("ivsample", "ivsamples"):
                raise EmuError(f"{path}: Shepherd datatype {datatype!r} is not supported; "
                               "record continuous IV samples (ivsample)")
            time_ds = data["time"]
            raw_time = time_ds[:]
            if "gain" in time_ds.attrs:
                times = raw_time.astype(np.float64) * float(time_ds.attrs["gain"]) + float(time_ds.attrs.get("offset", 0.0))
            else:
                times = raw_time.astype(np.float64) / 1e9  # nanoseconds
            voltage = _scaled(data["voltage"], path)
            current = _scaled(data["current"], path)
    except OSError as exc:
        raise EmuError(f"cannot read Shepherd HDF5 trace {path}: {exc}") from None
    if not (len(times) == len(voltage) == len(current)):
        raise EmuError(f"{path}: data/time, data/voltage and data/current differ in length "
                       f"({len(times)}, {len(voltage)}, {len(current)})")
    return times, voltage * current


def _scaled(dataset, path: Path) -> np.ndarray:
    try:
        gain = float(dataset.attrs["gain"])
        offset = float(dataset.attrs["offset"])
    except KeyError:
        raise EmuError(f"{path}: dataset {dataset.name} lacks its gain/offset attributes") from None
    return dataset[:].astype(np.float64) * gain + offset


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False

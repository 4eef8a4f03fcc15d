"""The result store of a campaign: an append-only JSON-lines file that survives being killed.

Line 1 is a header naming what the trials belong to: the firmware's SHA-256 and the options
that decide a trial's outcome. Every later line is one finished trial. Trials are appended
(and flushed) as they finish, so a campaign killed at any moment loses at most the trials
in flight; a half-written last line is dropped when the file is opened again. Resuming
refuses a file made for other firmware or options.

Public names: `ResultStore`, `trial_to_json`, `trial_from_json`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from .errors import EmuError

__all__ = ["ResultStore", "trial_to_json", "trial_from_json", "firmware_digest"]

FORMAT = 1


def firmware_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def trial_to_json(trial) -> dict:
    return {"at": trial.at if isinstance(trial.at, int) else list(trial.at), "outcome": trial.outcome,
            "pc": trial.pc, "observed": {k: v.hex() for k, v in trial.observed.items()}, "error": trial.error,
            **({"energy": trial.energy} if getattr(trial, "energy", None) is not None else {}),
            **({"pruned": True} if getattr(trial, "pruned", False) else {})}


def trial_from_json(data: dict):
    from .campaign import Trial

    at = data["at"] if isinstance(data["at"], int) else tuple(data["at"])
    return Trial(at, data["outcome"], data["pc"], {k: bytes.fromhex(v) for k, v in data["observed"].items()},
                 data.get("error"), data.get("energy"), pruned=data.get("pruned", False))


class ResultStore:
    """Trials of one campaign in `path`. With `resume`, trials already in the file are
    kept (`finished`) and new ones appended; without it the file starts afresh."""

    def __init__(self, path: str | Path, header: dict, resume: bool = False):
        self.path = Path(path)
        self.header = {"format": FORMAT, **header}
        self.finished: dict[tuple[int, ...], object] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.path.exists():
            self._load()
            self._file = self.path.open("a")
        else:
            self._file = self.path.open("w")
            self._write(self.header)

    def _load(self) -> None:
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        complete = lines[:-1]  # the part after the last newline was cut short, if any
        if not complete:
            raise EmuError(f"results file {self.path} has no header; delete it or drop --resume")
        try:
            header = json.loads(complete[0])
        except json.JSONDecodeError:
            raise EmuError(f"results file {self.path} does not start with a campaign header; "
                           "delete it or drop --resume") from None
        changed = [k for k in sorted(set(header) | set(self.header)) if header.get(k) != self.header.get(k)]
        if changed:
            raise EmuError(f"results file {self.path} was made for different "
                           f"{', '.join(changed)}; drop --resume to start again, or pass another --results")
        for number, line in enumerate(complete[1:], 2):
            try:
                trial = trial_from_json(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise EmuError(f"{self.path}:{number}: not a trial record; the file is damaged") from None
            self.finished[_key(trial.at)] = trial
        if lines[-1]:  # drop the half-written last line before appending
            with self.path.open("r+b") as f:
                f.truncate(len(raw) - len(lines[-1]))

    def append(self, trials: Iterable) -> None:
        for trial in trials:
            self.finished[_key(trial.at)] = trial
            self._file.write(json.dumps(trial_to_json(trial)) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def is_finished(self, at) -> bool:
        return _key(at) in self.finished

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()


def _key(at) -> tuple[int, ...]:
    return (at,) if isinstance(at, int) else tuple(at)

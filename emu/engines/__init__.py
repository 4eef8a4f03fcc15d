"""CPU engines behind one interface (`Engine`): icicle-emu for MSP430X, Unicorn for Cortex-M.

Nothing outside this package imports unicorn or icicle."""

from __future__ import annotations

from .base import Access, Engine, EngineStop, Mapping, MmioBus, StopKind

__all__ = ["Access", "Engine", "EngineStop", "Mapping", "MmioBus", "StopKind", "create_engine"]


def create_engine(arch: str) -> Engine:
    """A new engine for `arch` ("msp430" or "cortex-m")."""
    if arch == "msp430":
        from .icicle_engine import IcicleEngine

        return IcicleEngine()
    if arch == "cortex-m":
        from .unicorn_engine import UnicornEngine

        return UnicornEngine()
    raise ValueError(f"no engine for architecture {arch!r}")

"""The capacitor's voltage under constant input and load, solved exactly.

Within an interval where the harvester and the load are constant, the capacitor obeys

    C dV/dt = a / V + b - c V        (V > 0)

with a = input power - load power (W), b = input current - load current - leakage
current (A), c = 1 / leakage resistance (S). Writing q(V) = a + b V - c V^2, the time to
go from V0 to V1 is

    T = C * integral_{V0}^{V1} V / q(V) dV

which has a closed form when c = 0 (no resistive leakage): with b = 0 it is the familiar
C (V1^2 - V0^2) / (2 a), i.e. the change of 1/2 C V^2 divided by the net power. With c != 0
the integral is evaluated by adaptive Gauss-Kronrod quadrature to full double precision.
The voltage after a given time is found by bisection on that monotone function (or in
closed form where one exists). Everything is deterministic: same inputs, same bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Dynamics"]

INF = math.inf


@dataclass(frozen=True)
class Dynamics:
    """C dV/dt = a/V + b - cV."""

    capacitance: float
    a: float
    b: float
    c: float = 0.0

    # -- where the voltage can go ------------------------------------------------------
    def q(self, v: float) -> float:
        return self.a + self.b * v - self.c * v * v

    def direction(self, v: float) -> int:
        """+1 rising, -1 falling, 0 at rest. At V = 0 only `a` counts (no current flows)."""
        q = self.q(v) if v > 0 else self.a + (self.b if self.a == 0 else 0.0)
        return (q > 0) - (q < 0)

    def equilibria(self) -> list[float]:
        """Voltages V > 0 with q(V) = 0, ascending."""
        a, b, c = self.a, self.b, self.c
        roots: list[float] = []
        if c == 0:
            if b != 0:
                roots = [-a / b]
        else:
            disc = b * b + 4 * a * c
            if disc >= 0:
                s = math.sqrt(disc)
                # numerically stable pair of roots of c V^2 - b V - a = 0
                if b >= 0:
                    r1 = (b + s) / (2 * c)
                    r2 = (-a / c) / r1 if r1 != 0 else 0.0
                else:
                    r2 = (b - s) / (2 * c)
                    r1 = (-a / c) / r2 if r2 != 0 else 0.0
                roots = [r1, r2]
        return sorted(r for r in roots if r > 0 and math.isfinite(r))

    def barrier(self, v0: float, v1: float) -> float | None:
        """The equilibrium between v0 (excluded) and v1 (included) nearest to v0, if any:
        the voltage moving from v0 towards v1 approaches it and never passes."""
        lo, hi = min(v0, v1), max(v0, v1)
        inside = [r for r in self.equilibria() if lo < r <= hi] if v1 > v0 else \
                 [r for r in self.equilibria() if lo <= r < hi]
        if not inside:
            return None
        return min(inside) if v1 > v0 else max(inside)

    # -- time between two voltages ----------------------------------------------------------
    def time(self, v0: float, v1: float) -> float:
        """Seconds to go from v0 to v1; inf if an equilibrium lies in between or the
        voltage moves the other way."""
        if v0 == v1:
            return 0.0
        d = self.direction(v0)
        if d == 0 or (v1 > v0) != (d > 0) or self.barrier(v0, v1) is not None:
            return INF
        if self.c == 0:
            if self.a == 0 or self.b == 0:
                t = self._time_simple(v0, v1)
            elif abs(self.b) * max(v0, v1) < 0.25 * abs(self.a):
                t = self._time_series(v0, v1)
            else:
                t = self._time_log(v0, v1)
        else:
            t = self.capacitance * _gauss_kronrod(lambda v: v / self.q(v), v0, v1)
        return max(t, 0.0)

    def _time_simple(self, v0: float, v1: float) -> float:
        if self.b == 0:  # pure power: change of 1/2 C V^2 over the net power
            return 0.5 * self.capacitance * (v1 * v1 - v0 * v0) / self.a
        return self.capacitance * (v1 - v0) / self.b  # pure current: linear

    def _time_log(self, v0: float, v1: float) -> float:
        # integral of V / (a + bV) = V/b - a/b^2 ln|a + bV|; the log of the ratio via log1p
        a, b = self.a, self.b
        ratio = math.log1p(b * (v1 - v0) / (a + b * v0))
        return self.capacitance * ((v1 - v0) / b - a / (b * b) * ratio)

    def _time_series(self, v0: float, v1: float) -> float:
        # power-dominated (|bV/a| < 1/4): a/b^2 (u - ln(1+u)), u = bV/a, as a series in u
        a, b = self.a, self.b

        def f(v: float) -> float:
            # (u - log1p(u)) / u^2 = sum_{n>=2} (-1)^n u^(n-2) / n, and a/b^2 u^2 = V^2 / a
            u = b * v / a
            total, term, n = 0.0, 1.0, 2
            while True:
                piece = term / n if n % 2 == 0 else -term / n
                total += piece
                if abs(piece) <= 1e-18 * abs(total):
                    break
                term *= u
                n += 1
            return v * v / a * total

        return self.capacitance * (f(v1) - f(v0))

    # -- voltage after a time ---------------------------------------------------------------
    def voltage_after(self, v0: float, duration: float, bound: float) -> float:
        """The voltage `duration` seconds after v0, given that it does not pass `bound`
        (the caller's next event level) within that time."""
        if duration <= 0 or self.direction(v0) == 0:
            return v0
        if self.c == 0 and self.b == 0:  # closed form: V^2 = V0^2 + 2 a t / C
            v = math.sqrt(max(0.0, v0 * v0 + 2 * self.a * duration / self.capacitance))
            return min(v, bound) if bound >= v0 else max(v, bound)
        if self.c == 0 and self.a == 0:
            v = v0 + self.b * duration / self.capacitance
            return min(v, bound) if bound >= v0 else max(v, bound)
        barrier = self.barrier(v0, bound)
        far = barrier if barrier is not None else bound
        lo, hi = v0, far  # time(v0, lo) <= duration < time(v0, hi)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if mid == lo or mid == hi:
                break
            if self.time(v0, mid) <= duration:
                lo = mid
            else:
                hi = mid
        return lo


# 7-point Gauss / 15-point Kronrod nodes and weights on [-1, 1]
_XGK = (0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
        0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
        0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
        0.207784955007898467600689403773245, 0.0)
_WGK = (0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
        0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
        0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
        0.204432940075298892414161999234649, 0.209482141084727828012999174891714)
_WG = (0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
       0.381830050505118944950369775488975, 0.417959183673469387755102040816327)


def _gk15(f, a: float, b: float) -> tuple[float, float]:
    center, half = 0.5 * (a + b), 0.5 * (b - a)
    fc = f(center)
    kronrod, gauss = fc * _WGK[7], fc * _WG[3]
    for j in range(7):
        x = half * _XGK[j]
        pair = f(center - x) + f(center + x)
        kronrod += _WGK[j] * pair
        if j % 2 == 1:
            gauss += _WG[j // 2] * pair
    return kronrod * half, abs((kronrod - gauss) * half)


def _gauss_kronrod(f, a: float, b: float, depth: int = 0) -> float:
    value, error = _gk15(f, a, b)
    if error <= 1e-15 * abs(value) or depth >= 40 or abs(b - a) <= 1e-15 * max(abs(a), abs(b)):
        return value
    mid = 0.5 * (a + b)
    return _gauss_kronrod(f, a, mid, depth + 1) + _gauss_kronrod(f, mid, b, depth + 1)

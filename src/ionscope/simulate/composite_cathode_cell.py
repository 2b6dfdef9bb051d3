r"""The cell of the ``composite_cathode`` twin: its cycler record and what follows the cell in time.

The galvanostatic protocol's current per frame (:func:`frame_currents`), the illustrative
LiCoPO4 open-circuit voltage (:func:`open_circuit_voltage`), the cell's current, charge and
voltage at any time (:func:`cell_state`), the active particles' first-order lag of the cell
voltage (:func:`first_order_lag`) and the LATP rise's progress with the charge passed while
charging (:func:`latp_rise_progress`). The model and its parameters are described in
:mod:`ionscope.simulate.composite_cathode` (which re-exports every name here).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter

from ionscope.simulate.composite_cathode_params import CHARGE, DISCHARGE, CompositeCathodeParams


def open_circuit_voltage(soc: np.ndarray | float, p: CompositeCathodeParams) -> np.ndarray:
    """Illustrative open-circuit voltage (V) of the LiCoPO4 cell at state of charge ``soc``
    [open]: ``start + (plateau - start) (1 - exp(-soc / rise)) + slope * soc``.

    Examples
    --------
    >>> round(float(open_circuit_voltage(0.0, CompositeCathodeParams())), 3)
    3.0
    """
    s = np.asarray(soc, dtype=np.float64)
    rise = 1.0 - np.exp(-np.maximum(s, -5.0 * p.ocv_rise_soc) / p.ocv_rise_soc)
    return p.ocv_start_V + (p.ocv_plateau_V - p.ocv_start_V) * rise + p.ocv_slope_V * s


def frame_currents(p: CompositeCathodeParams) -> np.ndarray:
    """Current (A) of every frame's interval (charge positive)."""
    sign = np.select([p.frame_states() == CHARGE, p.frame_states() == DISCHARGE], [1.0, -1.0], 0.0)
    return sign * p.current_A


def cell_state(t: np.ndarray | float, p: CompositeCathodeParams) -> dict[str, np.ndarray]:
    """The cell at times ``t`` (s from the first frame's start).

    Returns
    -------
    dict
        ``current`` (A), ``charge`` (C, net, since t = 0), ``charge_in`` (C passed while
        charging), ``voltage`` (V). The current of frame k's interval ``[k, k + 1) *
        frame_interval_s`` applies from its start on; times past the last frame continue it.
    """
    t = np.asarray(t, dtype=np.float64)
    currents = frame_currents(p)
    period = p.frame_interval_s
    k = np.clip(np.floor(t / period).astype(np.int64), 0, currents.size - 1)
    starts = np.concatenate([[0.0], np.cumsum(currents * period)])[:-1]
    starts_in = np.concatenate([[0.0], np.cumsum(np.maximum(currents, 0.0) * period)])[:-1]
    dt = t - k * period
    current = currents[k]
    charge = starts[k] + current * dt
    charge_in = starts_in[k] + np.maximum(current, 0.0) * dt
    soc = charge / (p.capacity_mAh * 3.6)
    voltage = open_circuit_voltage(soc, p) + current * p.r_internal_ohm
    return {"current": current, "charge": charge, "charge_in": charge_in, "voltage": voltage}


def first_order_lag(u: np.ndarray, dt: float, tau: np.ndarray) -> np.ndarray:
    """Responses ``y`` of ``tau dy/dt = u - y`` (``y[0] = u[0] = 0`` assumed) to a signal ``u``
    sampled every ``dt`` and linear in between (exact for that input).

    Parameters
    ----------
    u : ndarray, shape (n,)
        Input samples.
    dt : float
        Sample interval (s).
    tau : ndarray, shape (m,)
        Time constants (s), > 0.

    Returns
    -------
    ndarray, shape (m, n)
    """
    out = np.empty((np.size(tau), u.size))
    for k, tk in enumerate(np.atleast_1d(tau)):
        e = math.exp(-dt / tk)
        b0 = 1.0 - tk * (1.0 - e) / dt
        b1 = (1.0 - e) - b0
        out[k] = lfilter([b0, b1], [1.0, -e], u)
    return out


def latp_rise_progress(charge_in: np.ndarray, p: CompositeCathodeParams) -> np.ndarray:
    """The LATP rise's progress ``g = 1 - exp(-Q_in / (I tau_L))`` (0..1) from the charge passed
    while charging (C)."""
    scale = p.current_A * p.latp_rise_time_s
    if scale <= 0.0:
        return np.zeros(np.shape(charge_in))
    return 1.0 - np.exp(-np.asarray(charge_in, dtype=np.float64) / scale)


__all__ = [
    "open_circuit_voltage",
    "frame_currents",
    "cell_state",
    "first_order_lag",
    "latp_rise_progress",
]

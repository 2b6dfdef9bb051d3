"""Differential capacity dQ/dV per half cycle, with the smoothing stated (:doc:`/guide/echem`).

dQ/dV turns the plateaus of a V(Q) curve into peaks (phase transitions, staging), but the
derivative of a measured curve amplifies its noise, so it needs smoothing and the smoothing must
be stated [Dubarry et al., J. Power Sources 219, 204 (2012), doi:10.1016/j.jpowsour.2012.07.016;
Bloom et al., J. Power Sources 139, 295 (2005)]. Two ways, both on a common voltage grid of bins
of a stated width:

- ``"binning"`` (default): the charge passed in each interval of the half cycle (trapezoid,
  :func:`~ionscope.echem.capacity.interval_charge_kernel`) is added to the voltage bin of the
  interval's mean voltage; ``dQ/dV = sum dq / bin width``. This is the bin average of the true
  dQ/dV and is robust to voltage noise (noise only spreads charge over neighbouring bins; it never
  divides by a small dV).
- ``"savgol"``: the binned curve is then smoothed along the voltage axis by a Savitzky-Golay
  filter [Savitzky & Golay, Anal. Chem. 36, 1627 (1964)] (window in bins and polynomial order
  stated), which keeps peak positions and heights better than a moving average of the same
  width. (Smoothing V(Q) *before* binning is not offered: a smoothed noise is correlated over the
  window and piles charge into spurious plateaus, where white noise only spreads it.)

Sign: Q is the half cycle's capacity (growing), so dQ/dV is positive on charge (V rises) and
negative on discharge (V falls), as dQ/dV plots show them.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from scipy.signal import savgol_filter

from ionscope.data import provenance, with_provenance
from ionscope.echem.capacity import half_cycle_table, interval_charge_kernel
from ionscope.echem.log import REST, log_arrays
from ionscope.errors import ConfigError, InputError
from ionscope.validation import Interval, Options, validate_params

__all__ = ["MAX_BINS", "dqdv_binned_kernel", "savgol_bins_kernel", "voltage_edges", "dqdv"]

#: The most voltage bins a dQ/dV grid may have (a bin width far too small for the voltage range).
MAX_BINS = 200_000


def dqdv_binned_kernel(voltage_V: np.ndarray, dq_mAh: np.ndarray, edges_V: np.ndarray) -> np.ndarray:
    """Charge increments binned by voltage: ``dQ/dV`` per bin (mAh/V).

    Parameters
    ----------
    voltage_V : ndarray, shape (m,)
        The voltage of each increment (the interval's mean voltage), V.
    dq_mAh : ndarray, shape (m,)
        The charge of each increment (mAh).
    edges_V : ndarray, shape (nbins + 1,)
        Increasing bin edges (V).

    Returns
    -------
    ndarray, shape (nbins,)
        ``sum(dq in bin) / bin width`` (mAh/V).

    Examples
    --------
    >>> import numpy as np
    >>> dqdv_binned_kernel(np.array([3.0025, 3.0075, 3.0076]), np.array([0.1, 0.2, 0.3]),
    ...                    np.array([3.0, 3.005, 3.01])).round(6)
    array([ 20., 100.])
    """
    sums, _ = np.histogram(np.asarray(voltage_V, dtype=np.float64), bins=np.asarray(edges_V, dtype=np.float64),
                           weights=np.asarray(dq_mAh, dtype=np.float64))
    return sums / np.diff(edges_V)


def savgol_bins_kernel(values: np.ndarray, window: int, polyorder: int) -> np.ndarray:
    """A binned curve smoothed by a Savitzky-Golay filter over its finite run of bins.

    Parameters
    ----------
    values : ndarray, shape (nbins,)
        dQ/dV per bin; NaN outside the voltage range the half cycle covers.
    window : int
        Filter window (bins, odd); shrunk to the number of covered bins (odd) when larger.
    polyorder : int
        Polynomial order (< window).

    Returns
    -------
    ndarray, shape (nbins,)
        The smoothed curve, NaN where ``values`` is; unchanged when too few bins are covered.
    """
    out = np.array(values, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(out))
    if finite.size == 0:
        return out
    lo, hi = finite[0], finite[-1] + 1
    n = hi - lo
    window = min(int(window), n if n % 2 else n - 1)
    if window <= polyorder:
        return out
    run = np.nan_to_num(out[lo:hi])
    out[lo:hi] = savgol_filter(run, window, polyorder, mode="interp")
    return out


def voltage_edges(v_min: float, v_max: float, bin_V: float) -> np.ndarray:
    """Bin edges on multiples of ``bin_V`` that cover ``[v_min, v_max]``."""
    lo = math.floor(v_min / bin_V)
    hi = max(math.ceil(v_max / bin_V), lo + 1)
    if hi - lo > MAX_BINS:
        raise ConfigError(f"a dQ/dV bin width of {bin_V:g} V makes {hi - lo} bins over {v_min:g} .. {v_max:g} V "
                          f"(at most {MAX_BINS}); give a wider bin")
    return np.arange(lo, hi + 1) * bin_V


@validate_params({
    "bin_V": [Interval(float, 0, 1, closed="right", unit="V")],
    "method": [Options({"binning", "savgol"})],
    "window": [Interval(int, 3, None, unit="bins")],
    "polyorder": [Interval(int, 1, 5)],
    "complete_only": [bool],
})
def dqdv(log: xr.Dataset, *, bin_V: float = 0.005, method: str = "binning", window: int = 7,
         polyorder: int = 2, complete_only: bool = True) -> xr.DataArray:
    """dQ/dV of every half cycle of a cycler log on a common voltage grid.

    Parameters
    ----------
    log : xarray.Dataset
        A cycler log (:func:`ionscope.io.load_cycler`).
    bin_V : float
        Voltage bin width (V); default 5 mV.
    method : {"binning", "savgol"}
        Binning of the charge increments alone, or binning then a Savitzky-Golay smoothing along
        the voltage axis.
    window : int
        Savitzky-Golay window (bins, odd; ``method="savgol"``).
    polyorder : int
        Savitzky-Golay polynomial order (< window).
    complete_only : bool
        Only complete half cycles (default); else also an open last one.

    Returns
    -------
    xarray.DataArray
        ``dqdv`` (dqdv_curve, dqdv_voltage), mAh/V: one curve per half cycle, NaN outside the
        voltage range the half cycle covers; coordinate ``dqdv_voltage`` (bin centres, V) and per
        curve ``dqdv_half_cycle``, ``dqdv_cycle``, ``dqdv_state``; attrs ``method``, ``bin_V``,
        ``window``, ``polyorder`` and ``smoothing`` (the smoothing in words).

    Raises
    ------
    InputError
        The log has no (complete) half cycle.
    """
    if method == "savgol" and window % 2 == 0:
        raise ConfigError(f"dqdv: parameter 'window' must be odd (Savitzky-Golay), got {window}")
    if method == "savgol" and polyorder >= window:
        raise ConfigError(f"dqdv: parameter 'polyorder' must be below window ({window}), got {polyorder}")
    arrays = log_arrays(log)
    rows = [r for r in half_cycle_table(arrays) if r["complete"] or not complete_only]
    if not rows:
        raise InputError("the log has no complete half cycle: no dQ/dV to compute")
    dq = interval_charge_kernel(arrays.time_s, arrays.current_mA)
    v_mid = np.concatenate([[arrays.voltage_V[0]], 0.5 * (arrays.voltage_V[1:] + arrays.voltage_V[:-1])])
    curves = []
    for row in rows:
        on = (arrays.half_cycle == row["half_cycle"]) & (arrays.state != REST)
        sign = 1.0 if row["state"] == "charge" else -1.0
        curves.append((row, sign * dq[on], v_mid[on]))
    edges = voltage_edges(min(float(v.min()) for _, _, v in curves), max(float(v.max()) for _, _, v in curves), bin_V)
    centres = 0.5 * (edges[1:] + edges[:-1])
    out = np.full((len(curves), centres.size), np.nan)
    for k, (row, q_inc, v_inc) in enumerate(curves):
        sign = 1.0 if row["state"] == "charge" else -1.0
        values = sign * dqdv_binned_kernel(v_inc, q_inc, edges)
        covered = (edges[1:] > v_inc.min()) & (edges[:-1] <= v_inc.max())
        out[k, covered] = values[covered]
        if method == "savgol":
            out[k] = savgol_bins_kernel(out[k], window, polyorder)
    text = (f"charge increments of each interval binned by the interval's mean voltage, bins of {bin_V * 1e3:g} mV; "
            "dQ/dV = charge in the bin / bin width (mAh/V), the bin average of dQ/dV")
    if method == "savgol":
        text += (f"; then smoothed along V by a Savitzky-Golay filter (window {window} bins = {window * bin_V * 1e3:g} mV, "
                 f"fewer for half cycles covering fewer bins; polynomial order {polyorder})")
    text += "; positive on charge, negative on discharge"
    da = xr.DataArray(
        out, dims=("dqdv_curve", "dqdv_voltage"), name="dqdv",
        coords={
            "dqdv_voltage": ("dqdv_voltage", centres, {"units": "V", "long_name": "voltage bin centre"}),
            "dqdv_curve": ("dqdv_curve", np.arange(len(curves), dtype=np.int64), {"units": "1"}),
            "dqdv_half_cycle": ("dqdv_curve", np.array([r["half_cycle"] for r, _, _ in curves], dtype=np.int64),
                                {"units": "1"}),
            "dqdv_cycle": ("dqdv_curve", np.array([r["cycle"] for r, _, _ in curves], dtype=np.int64), {"units": "1"}),
            "dqdv_state": ("dqdv_curve", np.array([r["state"] for r, _, _ in curves])),
        },
        attrs={"units": "mAh/V", "long_name": "differential capacity dQ/dV", "method": method, "bin_V": bin_V,
               "window": window, "polyorder": polyorder, "smoothing": text},
    )
    params = {"bin_V": bin_V, "method": method, "window": window, "polyorder": polyorder,
              "complete_only": complete_only}
    return with_provenance(da, "ionscope.echem.dqdv", params, inputs=[], history=provenance(log))

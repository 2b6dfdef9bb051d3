r"""Galvanostatic cycling of the composite-cathode cell before and after it was cut and polished.

Digital twin of the capacity check of :doc:`/guide/echem`: the cross-section study cycles the cell
at ~0.5C before cutting and polishing it for KPFM, and again afterwards; the capacity and voltage
curves must agree (the preparation did not change the cell), apart from the fresh cell's
irreversible first-cycle loss. The twin writes both cycler logs (``before`` and ``after``) with
their ground truth, so :mod:`ionscope.echem` is checked against known capacities, efficiencies
and dQ/dV peaks.

Model
-----
* **Open-circuit voltage**: a two-plateau insertion cathode (LiCoPO4 shows two close plateaus):
  the state of charge at electrode potential :math:`V` is

  .. math:: x(V) = \sum_{i=1,2} \frac{w_i}{1 + e^{-(V - E_i)/\theta}}

  with plateau voltages :math:`E_1, E_2` (``plateau_1_V``, ``plateau_2_V``), weights
  :math:`w_1, w_2 = 1 - w_1` (``plateau_1_weight``) and width :math:`\theta` (``plateau_width_V``);
  :math:`V(x)` is its inverse (monotonic, tabulated). So the true differential capacity is
  :math:`dQ/dV = C\,\sum_i w_i\,f_i(1 - f_i)/\theta`: two peaks at :math:`E_i`, the truth of a
  dQ/dV analysis.
* **Protocol** (both logs): ``rest_s`` at open circuit, then ``cycles`` cycles of a charge at
  :math:`+I` until the cell is full, a rest of ``rest_s``, a discharge at :math:`-I` until it is
  empty, a rest; :math:`I` = ``c_rate_per_h`` x ``capacity_mAh`` (mA). Charge = positive current.
* **Capacity**: every discharge returns the reversible capacity :math:`C` = ``capacity_mAh``
  (times 1 + ``after_capacity_change`` in the ``after`` log). A charge passes :math:`C/\eta`
  (:math:`\eta` = ``coulombic_efficiency``), except the fresh cell's first charge (the ``before``
  log), which passes :math:`C (1 + L)` with the irreversible loss :math:`L` =
  ``first_charge_loss`` (a side reaction during which the state of charge advances
  proportionally slower). The cell voltage is :math:`U = V(x) + I R` (``r_internal_ohm``) plus
  white noise ``noise_V``; recorded every ``record_interval_s``.

Ground truth per log and cycle: charge and discharge capacity (mAh), coulombic efficiency, mean
charge / discharge voltage (energy / capacity, from the noise-free curve), and the plateau
voltages (the dQ/dV peaks). The values are illustrative [open]; the study's cell (Masuda et al.
2019) cycled at ~0.5C before and after polishing.

Absolute times: the ``before`` log starts at ``START_TIME``; the ``after`` log
``days_between`` days later (the preparation). Each log's time is in s from its own start.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import xarray as xr

from ionscope.errors import ConfigError
from ionscope.simulate.registry import (
    ProgressCallback, check_parameters, parameter, register_twin, twin_attrs, twin_provenance,
)

TWIN = "cell_cycling"
START_TIME = "2025-05-30T09:00:00+09:00"
LOGS = ("before", "after")
STATE_MEANINGS = "rest charge discharge"
MODEL = (
    "Galvanostatic cycling of a two-plateau insertion cathode (state of charge x(V) = sum of two "
    "logistic steps at the plateau voltages) at +-I = c_rate x capacity: rest, then per cycle a "
    "charge until full, rest, discharge until empty, rest; cell voltage V(x) + I R + noise. Every "
    "discharge returns the reversible capacity; every charge passes capacity / efficiency, except "
    "the fresh cell's first charge (log 'before'), which passes capacity (1 + first_charge_loss). "
    "Log 'after' (after cutting and polishing) has the capacity times (1 + after_capacity_change)."
)


@dataclasses.dataclass(frozen=True)
class CellCyclingParams:
    """Parameters of the ``cell_cycling`` twin (see the module docstring).

    Attributes
    ----------
    capacity_mAh : float
        Reversible capacity (mAh). Default 0.1 (as the composite_cathode twin's cell).
    c_rate_per_h : float
        Charge and discharge rate (1/h). Default 0.5 (the reference study's ~0.5C).
    cycles : int
        Cycles per log. Default 3.
    first_charge_loss : float
        Irreversible capacity of the fresh cell's first charge, as a fraction of the reversible
        capacity. Default 0.15.
    coulombic_efficiency : float
        Discharge / charge capacity of the later cycles. Default 0.995.
    after_capacity_change : float
        Relative change of the reversible capacity in the ``after`` log (0: the preparation
        changed nothing). Default 0.
    plateau_1_V, plateau_2_V, plateau_1_weight, plateau_width_V : float
        The two plateaus of the open-circuit voltage (V), the first one's share of the capacity,
        and their width (V). Default 4.75, 4.85, 0.5, 0.012.
    r_internal_ohm : float
        Internal resistance (ohm). Default 2000.
    noise_V : float
        White noise of the recorded voltage (V). Default 0.0005.
    rest_s : float
        Open-circuit rest before the first charge and after every half cycle (s). Default 600.
    record_interval_s : float
        Logging interval (s). Default 10.
    days_between : float
        Days from the start of the ``before`` log to the start of the ``after`` log. Default 3.
    """

    capacity_mAh: float = parameter(0.1, 1e-9, 1e6, "mAh")
    c_rate_per_h: float = parameter(0.5, 1e-3, 100.0, "1/h")
    cycles: int = parameter(3, 1, 1000, "cycles", integer=True)
    first_charge_loss: float = parameter(0.15, 0.0, 5.0, "")
    coulombic_efficiency: float = parameter(0.995, 0.5, 1.0, "")
    after_capacity_change: float = parameter(0.0, -0.9, 10.0, "")
    plateau_1_V: float = parameter(4.75, 0.5, 6.0, "V")
    plateau_2_V: float = parameter(4.85, 0.5, 6.0, "V")
    plateau_1_weight: float = parameter(0.5, 0.0, 1.0, "")
    plateau_width_V: float = parameter(0.012, 1e-4, 1.0, "V")
    r_internal_ohm: float = parameter(2000.0, 0.0, 1e9, "ohm")
    noise_V: float = parameter(0.0005, 0.0, 1.0, "V")
    rest_s: float = parameter(600.0, 0.0, 1e7, "s")
    record_interval_s: float = parameter(10.0, 0.01, 1e5, "s")
    days_between: float = parameter(3.0, 0.0, 3650.0, "days")

    def __post_init__(self) -> None:
        check_parameters(self, TWIN)
        hours = self.cycles * (2.0 / self.c_rate_per_h * (1 + self.first_charge_loss)) + \
            (2 * self.cycles + 1) * self.rest_s / 3600.0
        if hours * 3600.0 / self.record_interval_s > 2_000_000:
            raise ConfigError(f"twin {TWIN!r}: {hours:.0f} h logged every {self.record_interval_s:g} s is more "
                              "than 2 million records per log; raise record_interval_s or lower cycles")

    @property
    def current_mA(self) -> float:
        """Galvanostatic current magnitude (mA)."""
        return self.c_rate_per_h * self.capacity_mAh


def state_of_charge(v: np.ndarray, p: CellCyclingParams) -> np.ndarray:
    """x(V): the state of charge (0..1) at open-circuit potential ``v`` (V)."""
    v = np.asarray(v, dtype=np.float64)
    w1 = p.plateau_1_weight
    f1 = 1.0 / (1.0 + np.exp(-(v - p.plateau_1_V) / p.plateau_width_V))
    f2 = 1.0 / (1.0 + np.exp(-(v - p.plateau_2_V) / p.plateau_width_V))
    return w1 * f1 + (1.0 - w1) * f2


def open_circuit_voltage(x: np.ndarray, p: CellCyclingParams) -> np.ndarray:
    """V(x): the inverse of :func:`state_of_charge`, tabulated on a fine voltage grid (V).

    Examples
    --------
    >>> p = CellCyclingParams()
    >>> round(float(open_circuit_voltage(0.25, p)), 3), round(float(open_circuit_voltage(0.75, p)), 3)
    (4.75, 4.85)
    """
    lo, hi = min(p.plateau_1_V, p.plateau_2_V) - 20 * p.plateau_width_V, max(p.plateau_1_V, p.plateau_2_V) + 20 * p.plateau_width_V
    grid = np.linspace(lo, hi, 20001)
    return np.interp(np.clip(x, 0.0, 1.0), state_of_charge(grid, p), grid)


def _log(p: CellCyclingParams, fresh: bool, scale: float, rng: np.random.Generator):
    """One log: times (s), voltage (V), current (mA), true per-cycle table."""
    c = p.capacity_mAh * scale
    i_ma = p.current_mA
    dt = p.record_interval_s
    t_parts, x_parts, i_parts = [], [], []
    t0, x = 0.0, 0.0
    truth = []

    def segment(duration_s, current, dx_per_s):
        nonlocal t0, x
        n = max(int(np.floor(duration_s / dt)), 1)
        t = t0 + dt * np.arange(n)
        xs = np.clip(x + dx_per_s * (t - t0), 0.0, 1.0)
        t_parts.append(t)
        x_parts.append(xs)
        i_parts.append(np.full(n, current))
        t0 += n * dt
        x = float(np.clip(x + dx_per_s * n * dt, 0.0, 1.0))

    segment(p.rest_s, 0.0, 0.0)
    for k in range(p.cycles):
        passed = c * (1.0 + p.first_charge_loss) if (fresh and k == 0) else c / p.coulombic_efficiency
        duration = passed / i_ma * 3600.0
        segment(duration, i_ma, 1.0 / duration)
        segment(p.rest_s, 0.0, 0.0)
        duration_d = c / i_ma * 3600.0
        segment(duration_d, -i_ma, -1.0 / duration_d)
        segment(p.rest_s, 0.0, 0.0)
        truth.append((passed, c))
    t = np.concatenate(t_parts)
    xs = np.concatenate(x_parts)
    cur = np.concatenate(i_parts)
    clean = open_circuit_voltage(xs, p) + cur * 1e-3 * p.r_internal_ohm
    v = clean + p.noise_V * rng.standard_normal(t.size)
    # per-cycle truth as the log holds it: the current flows for whole record intervals (a
    # trapezoidal integral of the records gives exactly I n dt); mean voltages from the clean curve
    rows = []
    edges = np.flatnonzero(np.diff(np.sign(cur)) != 0) + 1
    seg_start = np.r_[0, edges]
    seg_end = np.r_[edges, t.size]
    halves = [(a, b) for a, b in zip(seg_start, seg_end) if cur[a] != 0]
    for k in range(p.cycles):
        ch, dis = halves[2 * k], halves[2 * k + 1]
        q_ch = i_ma * (ch[1] - ch[0]) * dt / 3600.0
        q_dis = i_ma * (dis[1] - dis[0]) * dt / 3600.0
        e_ch = float(np.sum(clean[ch[0]:ch[1]])) * i_ma * dt / 3600.0
        e_dis = float(np.sum(clean[dis[0]:dis[1]])) * i_ma * dt / 3600.0
        rows.append((q_ch, q_dis, q_dis / q_ch, e_ch / q_ch, e_dis / q_dis))
    return t, v, cur, np.array(rows)


@register_twin(TWIN, "galvanostatic cycling of the composite-cathode cell before and after cutting and "
               "polishing (two cycler logs; first-cycle loss; two-plateau dQ/dV)", params=CellCyclingParams)
def simulate_cell_cycling(params: CellCyclingParams | None = None, seed: int = 0, *,
                          progress: ProgressCallback | None = None) -> xr.Dataset:
    """Simulate the two cycler logs (module docstring).

    Returns
    -------
    xarray.Dataset
        Dims ``log`` ("before", "after") and ``record`` (the longer log's records; the shorter
        one padded with NaN): ``cycler_time`` (log, record) s from each log's start,
        ``cycler_voltage`` V, ``cycler_current`` mA (charge positive); truth per ``log`` and
        ``cycle``: ``charge_capacity_true``, ``discharge_capacity_true`` (mAh),
        ``coulombic_efficiency_true``, ``mean_charge_voltage_true``, ``mean_discharge_voltage_true``
        (V); attrs ``start_time`` per log (``start_time_before``, ``start_time_after``), the
        plateau voltages (``dqdv_peaks_V``), parameters, model, provenance.

    Examples
    --------
    >>> ds = simulate_cell_cycling(CellCyclingParams(cycles=1))
    >>> [round(float(v), 3) for v in ds["coulombic_efficiency_true"].values[:, 0]]   # before, after
    [0.87, 0.996]
    """
    import datetime as _dt

    p = CellCyclingParams() if params is None else params
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    logs = [_log(p, True, 1.0, rng), _log(p, False, 1.0 + p.after_capacity_change, rng)]
    if progress is not None:
        progress(2, 2)
    n = max(len(lg[0]) for lg in logs)

    def pad(a):
        return np.concatenate([a, np.full(n - a.size, np.nan)])

    start = _dt.datetime.fromisoformat(START_TIME)
    after = start + _dt.timedelta(days=p.days_between)
    cycle = np.arange(1, p.cycles + 1)
    names = ["charge_capacity_true", "discharge_capacity_true", "coulombic_efficiency_true",
             "mean_charge_voltage_true", "mean_discharge_voltage_true"]
    units = ["mAh", "mAh", "1", "V", "V"]
    data = {
        "cycler_time": (("log", "record"), np.stack([pad(lg[0]) for lg in logs]), {"units": "s"}),
        "cycler_voltage": (("log", "record"), np.stack([pad(lg[1]) for lg in logs]), {"units": "V"}),
        "cycler_current": (("log", "record"), np.stack([pad(lg[2]) for lg in logs]), {"units": "mA"}),
    }
    for j, (name, unit) in enumerate(zip(names, units)):
        data[name] = (("log", "cycle"), np.stack([lg[3][:, j] for lg in logs]), {"units": unit})
    ds = xr.Dataset(data, coords={"log": list(LOGS), "cycle": cycle, "record": np.arange(n)})
    ds.attrs = twin_attrs(TWIN, seed, p, primary="cycler_voltage", model=MODEL,
                          start_time_before=start.isoformat(), start_time_after=after.isoformat(),
                          dqdv_peaks_V=[p.plateau_1_V, p.plateau_2_V], active_mass_mg=1.0, area_cm2=0.5)
    return twin_provenance(ds, "ionscope.simulate.cell_cycling", p, seed)


def log_table(ds: xr.Dataset, log: str) -> str:
    """One log as CSV text ``time_s,voltage_V,current_mA`` (the NaN padding left out), with the
    log's start time and the cell's active mass and area as ``#`` comment lines first."""
    k = list(ds["log"].values).index(log)
    t, v, i = (np.asarray(ds[name].values[k], dtype=np.float64) for name in ("cycler_time", "cycler_voltage",
                                                                             "cycler_current"))
    keep = np.isfinite(t)
    lines = [f"# start_time: {ds.attrs[f'start_time_{log}']}", f"# active_mass_mg: {ds.attrs['active_mass_mg']}",
             f"# area_cm2: {ds.attrs['area_cm2']}", "time_s,voltage_V,current_mA"]
    lines += [f"{a:.10g},{b:.10g},{c:.10g}" for a, b, c in zip(t[keep], v[keep], i[keep])]
    return "\n".join(lines) + "\n"


def write_cycling_files(ds: xr.Dataset, out_dir: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """Write the twin as the cycler leaves it: ``before.csv`` and ``after.csv`` (:func:`log_table`)
    and the ground truth ``truth.zarr``; each atomically, existing files refused before anything is
    written unless ``overwrite``. Returns the paths."""
    from ionscope import io

    out_dir = Path(out_dir)
    paths = [out_dir / f"{log}.csv" for log in LOGS] + [out_dir / "truth.zarr"]
    for path in paths:
        io.check_output(path, overwrite=overwrite)
    for log, path in zip(LOGS, paths):
        io.write_text(path, log_table(ds, log), overwrite=overwrite)
    io.save(ds, paths[-1], overwrite=overwrite)
    return paths


__all__ = ["CellCyclingParams", "simulate_cell_cycling", "state_of_charge", "open_circuit_voltage", "log_table",
           "write_cycling_files", "LOGS", "START_TIME"]

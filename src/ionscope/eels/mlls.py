r"""Multiple linear least-squares (MLLS) fitting of EELS spectra to reference spectra.

Every spectrum :math:`S(E)` of a spectrum image or an operando series is modelled, inside a fit
window, as a linear combination of :math:`K` reference spectra (Leapman & Swyt 1988),

.. math::

    S(E) \approx \sum_k a_k R_k(E) \;\left[ + \sum_k d_k \frac{dR_k}{dE}(E) \right],

where the optional first-derivative terms absorb small energy shifts :math:`\delta_k` of each
reference (first-order Taylor expansion :math:`a R(E - \delta) \approx a R(E) - a\delta R'(E)`,
so :math:`\delta_k = -d_k / a_k`). The Li fraction of a two-phase mixture is
:math:`x = a_\mathrm{rich} / (a_\mathrm{rich} + a_\mathrm{poor})` (:doc:`/guide/eels`).

This module holds the xarray wrapper :func:`mlls_fit`: it checks the spectra and their energy
axis, cuts the fit window, interpolates the references (and their derivatives) onto the data's
channels, fits numpy- or dask-backed data block by block and assembles the labelled result with
provenance. The numpy kernels - :func:`factor_design` (:class:`DesignFactor`),
:func:`mlls_unweighted`, :func:`mlls_weighted` (:class:`MLLSResult`) and :func:`li_fraction` -
live in :mod:`ionscope.eels.mlls_kernels` (whose docstring describes the numerics: one thin QR
of the design, blocked GEMMs, float32 refinement, Poisson weights, exact NNLS) and are
re-exported here.

Each spectrum gets its reduced :math:`\chi^2 / (E_w - K)` (:math:`E_w` fitted channels,
:math:`K` terms), and the standard errors are scaled by it, like ``absolute_sigma=False`` in
:func:`scipy.optimize.curve_fit` (details in :mod:`ionscope.eels.mlls_kernels`).

References
----------
R. D. Leapman, C. R. Swyt, "Separation of overlapping core edges in electron energy loss
spectra by multiple-least-squares fitting", Ultramicroscopy 26 (1988) 393.
C. L. Lawson, R. J. Hanson, *Solving Least Squares Problems*, Prentice-Hall (1974), ch. 23.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import is_lazy, provenance, units_of, with_provenance
from ionscope.eels import mlls_kernels
from ionscope.eels.energy import energy_ev, float_dtype, window_slice
from ionscope.eels.mlls_kernels import (
    DesignFactor,
    MLLSResult as MLLSResult,
    factor_design,
    li_fraction,
    mlls_unweighted,
    mlls_weighted,
)
from ionscope.eels.wrapping import require_spectra
from ionscope.errors import ConfigError, DimensionError, EmptyDataError, InputError, NonFiniteError
from ionscope.validation import validate_params

STEP = "ionscope.eels.mlls_fit"
#: A reference's dispersion may differ from the data's by at most this factor.
_MAX_DISPERSION_RATIO = 2.0


def _named_references(references: Any) -> list[tuple[str, xr.DataArray]]:
    if isinstance(references, xr.DataArray):
        raise InputError("references must be a dict name -> DataArray or a sequence of DataArrays, not one array")
    if isinstance(references, Mapping):
        items = [(str(k), v) for k, v in references.items()]
    elif isinstance(references, Sequence) and not isinstance(references, str):
        items = [(str(v.name) if getattr(v, "name", None) is not None else f"component_{i}", v)
                 for i, v in enumerate(references)]
    else:
        raise InputError(f"references must be a dict or a sequence of DataArrays, got {type(references).__name__}")
    if not items:
        raise InputError("no reference spectra given; pass at least one")
    names = [n for n, _ in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"reference names must be unique, {dup} repeat; pass a dict to name them")
    return items


def _reference_column(name: str, ref: Any, e_win: np.ndarray, disp: float, derivative: bool):
    what = f"reference {name!r}"
    if not isinstance(ref, xr.DataArray):
        raise InputError(f"{what} must be an xarray.DataArray with dim 'energy', got {type(ref).__name__}")
    if ref.dims != ("energy",):
        raise DimensionError(f"{what} must be 1-D along 'energy', got dims {tuple(ref.dims)}")
    if ref.size < 2:
        raise InputError(f"{what} has {ref.size} channel(s); it needs at least 2")
    e_ref, d_ref = energy_ev(ref, what)
    values = np.asarray(ref.values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise InputError(f"{what} holds NaN/inf values; clean or interpolate it first")
    tol = 1e-3 * disp
    if e_ref[0] > e_win[0] + tol or e_ref[-1] < e_win[-1] - tol:
        raise InputError(
            f"{what} covers {e_ref[0]:g}-{e_ref[-1]:g} eV but the fit window needs "
            f"{e_win[0]:g}-{e_win[-1]:g} eV; narrow fit_window or use a reference recorded over "
            "the whole window"
        )
    ratio = d_ref / disp
    if ratio > _MAX_DISPERSION_RATIO:
        raise InputError(
            f"{what} has a dispersion of {d_ref:g} eV/channel, {ratio:.3g}x coarser than the data's "
            f"{disp:g} eV/channel; interpolation cannot supply the missing fine structure - record "
            f"the reference at the data's dispersion or bin the data to match "
            f"(da.coarsen(energy={int(round(ratio))}, boundary='trim').sum())"
        )
    if ratio < 1 / _MAX_DISPERSION_RATIO:
        n = int(round(1 / ratio))
        raise InputError(
            f"{what} has a dispersion of {d_ref:g} eV/channel, {1 / ratio:.3g}x finer than the data's "
            f"{disp:g} eV/channel; sampling it would alias its fine structure - bin it to the data's "
            f"dispersion first (ref.coarsen(energy={n}, boundary='trim').mean())"
        )
    column = np.interp(e_win, e_ref, values)
    deriv = np.interp(e_win, e_ref, np.gradient(values, e_ref)) if derivative else None
    return column, deriv


def _block_fit(
    block: np.ndarray,
    *,
    factor: DesignFactor,
    weighted: bool,
    constrained: np.ndarray,
    n_ref: int,
    derivatives: bool,
    li_pair: tuple[int, int] | None,
    workers: int | None,
    lead_dims: tuple[str, ...],
    in_block: bool,
) -> np.ndarray:
    """Fit one (..., E) block; returns the wrapper's outputs packed along the last axis:
    coefficients, stderr (``n_ref`` each), chi2, [derivative coefficients, shifts], [x, sigma_x]."""
    lead = block.shape[:-1]
    spectra = block.reshape(-1, block.shape[-1])
    kernel = mlls_weighted if weighted else mlls_unweighted
    res = kernel(spectra, factor, nonnegative=constrained, return_covariance=li_pair is not None,
                 workers=workers)
    bad = ~np.isfinite(res.chi2)
    if bad.any():
        first = np.unravel_index(int(np.argmax(bad)), lead) if lead else ()
        where = ", ".join(f"{d}={i}" for d, i in zip(lead_dims, first))
        raise NonFiniteError(
            f"{int(bad.sum())} spectra hold NaN/inf values in the fit window (first at {where}"
            f"{' of a dask block' if in_block else ''}); mask or interpolate them before fitting"
        )
    a = res.coefficients
    cols = [a[:, :n_ref], res.stderr[:, :n_ref], res.chi2[:, None]]
    if derivatives:
        d = a[:, n_ref:]
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(a[:, :n_ref] != 0, -d / a[:, :n_ref], np.nan)
        cols += [d, shift]
    if li_pair is not None:
        x, err = li_fraction(a, res.covariance, *li_pair)
        cols += [x[:, None], err[:, None]]
    packed = np.concatenate(cols, axis=1).astype(float_dtype(block.dtype), copy=False)
    return packed.reshape(lead + packed.shape[1:])


@validate_params({"weighted": [bool], "nonnegative": [bool], "derivatives": [bool],
                  "rich": [str, None], "poor": [str, None]})
def mlls_fit(
    da: xr.DataArray,
    references: Mapping[str, xr.DataArray] | Sequence[xr.DataArray],
    *,
    fit_window: tuple[float, float] | None = None,
    weighted: bool = False,
    nonnegative: bool = False,
    derivatives: bool = False,
    rich: str | None = None,
    poor: str | None = None,
) -> xr.Dataset:
    """Fit every spectrum of a spectrum image or series to reference spectra (MLLS).

    Lazy: stays lazy on dask-backed input (computed block by block when the result is).

    Parameters
    ----------
    da : xarray.DataArray
        Spectra (counts) with dim ``energy`` (energy loss, evenly spaced, in eV, keV or meV)
        and any of ``time``, ``y``, ``x``, ``position`` in front. May be dask-backed (chunked
        over the leading dims): the result is then lazy and computed block by block.
    references : dict of str to DataArray, or sequence of DataArray
        1-D reference spectra along ``energy``, linearly interpolated onto the data's channels.
        Their dispersion must be within a factor 2 of the data's, and they must cover the fit
        window. A sequence takes the names from ``DataArray.name``.
    fit_window : (float, float), optional
        Energy-loss range (eV, inclusive) of the channels that are fitted; default the whole
        recorded range. Must lie inside the data and hold more channels than fitted terms.
    weighted : bool
        Poisson weights ``1 / max(S, 1)`` (for raw counts); default unweighted.
    nonnegative : bool
        Constrain the reference coefficients to be >= 0 (exact NNLS; derivative terms stay free).
    derivatives : bool
        Add each reference's first derivative ``dR/dE`` as an extra term to absorb small energy
        shifts (well below the features' width).
    rich, poor : str, optional
        Names of the Li-rich and Li-poor references; both given, ``li_fraction`` is reported.

    Returns
    -------
    xarray.Dataset
        ``coefficients`` and ``stderr`` (component, then the leading dims), reduced ``chi2`` (leading
        dims; unweighted: residual variance in the data's units squared); with ``derivatives``
        also ``derivative_coefficients`` (eV) and ``energy_shift`` (eV, ``-d_k / a_k``, positive =
        towards higher loss); with ``rich``/``poor`` also ``li_fraction`` and
        ``li_fraction_stderr``. float32 data give float32 results. ``attrs`` hold the
        provenance, ``fit_window_eV`` (the centres of the first and last fitted channel) and
        ``n_channels``.

    Raises
    ------
    InputError
        Bad dims or energy axis, a window outside the data or with too few channels,
        references that do not cover the window or whose dispersion does not match, all-zero or
        linearly dependent references, all-zero data, unknown ``rich``/``poor`` names.
    NonFiniteError
        Spectra with NaN/inf in the window (for lazy data: when the block is computed).

    Examples
    --------
    >>> from ionscope.data import signal
    >>> e = np.arange(50.0, 80.0, 0.1)
    >>> lco = signal(np.exp(-((e - 62) / 3) ** 2) + 0.2, ("energy",), name="LiCoO2", units="1",
    ...              coords={"energy": e})
    >>> co3o4 = signal(np.exp(-((e - 66) / 4) ** 2) + 0.1, ("energy",), name="Co3O4", units="1",
    ...                coords={"energy": e})
    >>> x_true = np.linspace(0.1, 0.9, 8)
    >>> spectra = 100 * (np.outer(x_true, lco.values) + np.outer(1 - x_true, co3o4.values))
    >>> da = signal(spectra, ("x", "energy"), name="eels", units="counts",
    ...             coords={"x": 2.0, "energy": e})
    >>> ds = mlls_fit(da, [lco, co3o4], fit_window=(52, 75), rich="LiCoO2", poor="Co3O4")
    >>> bool(np.allclose(ds.li_fraction, x_true))
    True
    """
    require_spectra(da, "the spectra")
    if not (np.issubdtype(da.dtype, np.floating) or np.issubdtype(da.dtype, np.integer)):
        raise InputError(f"the spectra must be real numbers, got dtype {da.dtype}")
    energy, disp = energy_ev(da, "the spectra")
    win = window_slice(energy, disp, fit_window, what="fit_window")
    e_win = energy[win]
    items = _named_references(references)
    names = [n for n, _ in items]
    n_ref = len(items)
    n_terms = n_ref * (2 if derivatives else 1)
    if e_win.size <= n_terms:
        raise ConfigError(
            f"the fit window {e_win[0] if e_win.size else fit_window[0]:g}-"
            f"{e_win[-1] if e_win.size else fit_window[1]:g} eV holds {e_win.size} channel(s) "
            f"but {n_terms} terms are fitted; it needs at least {n_terms + 1} - widen it"
        )
    if (rich is None) != (poor is None):
        raise ConfigError("give both rich= and poor= (reference names) to get the Li fraction, or neither")
    li_pair = None
    if rich is not None:
        missing = [n for n in (rich, poor) if n not in names]
        if missing:
            raise ConfigError(f"rich/poor name(s) {missing} are not among the references {names}")
        if rich == poor:
            raise ConfigError(f"rich and poor must be different references, both are {rich!r}")
        li_pair = (names.index(rich), names.index(poor))
    columns, derivs = [], []
    for name, ref in items:
        col, der = _reference_column(name, ref, e_win, disp, derivatives)
        columns.append(col)
        derivs.append(der)
    col_names = list(names)
    if derivatives:
        columns += derivs
        col_names += [f"d{n}/dE" for n in names]
    factor = factor_design(np.stack(columns, axis=1), col_names)
    constrained = np.zeros(n_terms, dtype=bool)
    constrained[:n_ref] = bool(nonnegative)

    lazy = is_lazy(da)
    data = da.transpose(..., "energy").isel(energy=win)
    lead_dims = tuple(d for d in data.dims if d != "energy")
    out_specs: list[tuple[str, int, str, str]] = [  # name, columns (0 = no component dim), ...
        ("coefficients", n_ref, "1", "MLLS coefficient of each reference"),
        ("stderr", n_ref, "1", "standard error of the MLLS coefficient"),
        ("chi2", 0, "1" if weighted else f"({units_of(da)})^2",
         "reduced chi-square (Poisson-weighted)" if weighted
         else "reduced chi-square (residual variance per channel)"),
    ]
    if derivatives:
        out_specs += [
            ("derivative_coefficients", n_ref, "eV", "coefficient of the reference's energy derivative"),
            ("energy_shift", n_ref, "eV", "energy shift of each reference, -d/a (positive = higher loss)"),
        ]
    if li_pair is not None:
        out_specs += [
            ("li_fraction", 0, "1", f"Li fraction a_{rich} / (a_{rich} + a_{poor})"),
            ("li_fraction_stderr", 0, "1", "standard error of the Li fraction (propagated)"),
        ]
    width = sum(max(ncol, 1) for _, ncol, _, _ in out_specs)
    dtype = float_dtype(da.dtype)
    fit_kw = dict(
        factor=factor, weighted=bool(weighted), constrained=constrained, n_ref=n_ref,
        derivatives=bool(derivatives), li_pair=li_pair, lead_dims=lead_dims,
    )
    if lazy:
        # map_blocks, not apply_ufunc: a gufunc's core dim is "contracted", and dask would copy
        # every input block through concatenate3 even when the energy axis is one chunk
        arr = data.data.rechunk({data.ndim - 1: -1})
        packed = arr.map_blocks(
            _block_fit, chunks=arr.chunks[:-1] + ((width,),), dtype=dtype,
            meta=np.empty((0,) * arr.ndim, dtype), workers=1, in_block=True, **fit_kw,
        )
    else:
        packed = _block_fit(np.asarray(data.data), workers=None, in_block=False, **fit_kw)
    results, col = [], 0
    for _, ncol, _, _ in out_specs:
        if ncol:
            part = packed[..., col:col + ncol]
            part = (part.transpose((part.ndim - 1,) + tuple(range(part.ndim - 1))) if lazy
                    else np.ascontiguousarray(np.moveaxis(part, -1, 0)))
        else:
            part = packed[..., col]
            part = part if lazy else np.ascontiguousarray(part)
        results.append(part)
        col += max(ncol, 1)
    if not lazy and not np.any(results[0]) and not np.any(results[2]):
        raise EmptyDataError(
            f"all {int(np.prod([data.sizes[d] for d in lead_dims]))} spectra are zero in the fit "
            f"window {e_win[0]:g}-{e_win[-1]:g} eV; check the file, the selected region and the "
            "fit window"
        )

    # One Dataset from plain Variables: the coordinates (and their indexes) are built once,
    # not once per output variable - for a single spectrum image this is most of the wrapper.
    have = da.coords.variables
    coords: dict[str, Any] = {
        d: xr.Variable((d,), np.asarray(have[d].values), {"units": units_of(have[d])})
        for d in lead_dims if d in have
    }
    coords["component"] = xr.Variable(("component",), np.asarray(names), {"units": "1"})
    coords.update(
        (c, da.coords[c]) for c in da.coords
        if c not in da.dims and "energy" not in da.coords[c].dims
    )
    history = provenance(da)
    params = {
        "references": names,
        "fit_window_eV": [float(e_win[0]), float(e_win[-1])],
        "n_channels": int(e_win.size),
        "weighted": bool(weighted),
        "nonnegative": bool(nonnegative),
        "derivatives": bool(derivatives),
        "rich": rich,
        "poor": poor,
    }
    inputs = [da, *(ref for _, ref in items)]
    variables = {
        name: xr.Variable((("component",) if per_comp else ()) + lead_dims, res,
                          {"units": units, "long_name": long_name})
        for (name, per_comp, units, long_name), res in zip(out_specs, results)
    }
    ds = xr.Dataset(variables, coords=coords)
    ds.attrs = {"fit_window_eV": params["fit_window_eV"], "n_channels": params["n_channels"],
                "condition_number": factor.condition}
    return with_provenance(ds, STEP, params, inputs=inputs, history=history, variables=True)


# the kernels are re-exported: every name of mlls_kernels.__all__ imports from here too
__all__ = [*mlls_kernels.__all__, "mlls_fit"]

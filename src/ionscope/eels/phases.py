"""Preparing spectra for NMF phase mapping.

NMF factorises non-negative data, and what it separates is spectral *shape*: the background
and the local thickness would otherwise dominate the first components. So before
:func:`ionscope.eels.decomposition.nmf` the spectra are (optionally) background-subtracted,
clipped at zero (negative counts are noise once the background is gone) and scaled to unit sum
in the decomposition window, which removes thickness contrast (Shiga et al., Ultramicroscopy
170 (2016) 43, normalise in the same spirit).
"""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr

from ionscope.data import provenance, with_provenance
from ionscope.eels.background import subtract_powerlaw
from ionscope.eels.energy import check_window
from ionscope.eels.wrapping import spectrum_image


def prepare_for_nmf(
    da: xr.DataArray,
    *,
    window: Sequence[float] | None = None,
    background: Sequence[float] | None = None,
    normalize: bool = True,
) -> xr.DataArray:
    """Background-subtract, clip and normalise spectra for NMF.

    Lazy: stays lazy on dask-backed input.

    Parameters
    ----------
    da : xarray.DataArray
        Spectra with ``energy`` (eV) last.
    window : (float, float), optional
        Decomposition window (eV) used for the normalisation; default the whole axis.
    background : (float, float), optional
        Pre-edge window (eV) of a power-law background to subtract first.
    normalize : bool
        Scale every spectrum to unit sum over ``window``.

    Returns
    -------
    xarray.DataArray
        Non-negative spectra; pixels whose background could not be fitted are zero.
    """
    da, energy = spectrum_image(da, "spectra")
    history = provenance(da)
    out = da
    if background is not None:
        fit = subtract_powerlaw(da, background)
        out = fit["signal"].where(fit["mask"] == 0, 0.0)
    out = out.clip(min=0)
    if normalize:
        lo, hi = check_window(energy, window) if window is not None else (energy[0], energy[-1])
        total = out.sel(energy=slice(lo, hi)).sum("energy")
        out = (out / total.where(total > 0)).fillna(0.0)
    out = out.rename(da.name or "spectra")
    out.attrs = {"units": "1" if normalize else da.attrs.get("units", "counts")}
    return with_provenance(out, "ionscope.eels.prepare_for_nmf",
                           {"window_eV": window, "background_eV": background, "normalize": normalize},
                           history=history)

r"""Ions, their masses and their integration windows.

- :data:`ION_TABLE`: singly charged positive ions that a TOF-SIMS study of a lithium cathode
  meets, by isotope-first name (``"7Li"``), with the ion's mass in u: the atom's mass minus one
  electron mass (:data:`ELECTRON_MASS_U`).
- :func:`parse_ions`: a user's list of ions (``"7Li,6Li,59Co"``, ``"7Li+"``, or ``"NAME=MASS"``
  for an ion the table lacks) -> ``{name: mass}``.
- :func:`ion_windows`: an integration window ``[lo, hi)`` around each ion, either of a fixed
  width in u or of a number of peak widths (FWHM = m / resolution); overlapping windows are
  refused.
- :func:`integrate_windows` (a dense ``(..., mass)`` spectrum on one mass axis) and
  :func:`integrate_peaks` (the padded centroid-peak model ``(..., peak)`` with a per-pixel
  ``peak_mass``) sum the counts inside each window -> ``(ion, ...)``, vectorised over pixels.

The grammar of an ion name: ``<mass number><element>[+]``, e.g. ``7Li``, ``7Li+``, ``59Co``.
``Li7`` or ``Co`` are refused with the name to use instead.

References
----------
M. Wang et al., Chin. Phys. C 45, 030003 (2021) (AME2020 atomic masses). E. Tiesinga et al.,
Rev. Mod. Phys. 93, 025010 (2021) (CODATA 2018: electron mass 5.48579909065e-4 u).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np

from ionscope.errors import ConfigError, DimensionError, InputError

__all__ = [
    "ELECTRON_MASS_U",
    "ATOMIC_MASS_U",
    "ION_TABLE",
    "LI7_LI6",
    "LITHIUM_IONS",
    "DEFAULT_WINDOW_U",
    "element_of",
    "parse_ions",
    "ion_windows",
    "integrate_windows",
    "integrate_peaks",
]

#: Electron mass (u), CODATA 2018.
ELECTRON_MASS_U = 5.48579909065e-4

#: Neutral atomic masses (u), AME2020, of the isotopes in :data:`ION_TABLE`.
ATOMIC_MASS_U: dict[str, float] = {
    "6Li": 6.0151228874,
    "7Li": 7.0160034366,
    "16O": 15.9949146196,
    "23Na": 22.9897692820,
    "27Al": 26.9815384,
    "31P": 30.9737619986,
    "39K": 38.9637064864,
    "40Ca": 39.962590863,
    "48Ti": 47.94794198,
    "59Co": 58.93319429,
    "106Pd": 105.9034804,
    "197Au": 196.96656879,
}

#: Singly charged positive ions: name -> mass of the ion (u), one electron mass below the atom's
#: (7Li+ 7.015455, 6Li+ 6.014574).
ION_TABLE: dict[str, float] = {name: round(m - ELECTRON_MASS_U, 6) for name, m in ATOMIC_MASS_U.items()}

#: Natural 7Li / 6Li abundance ratio, 92.4 / 7.6 (:doc:`/guide/sims`): the 6Li+ signal times
#: this ratio stands in for a saturated 7Li+ signal.
LI7_LI6 = 12.2

#: Lithium isotopes (never matrix ions).
LITHIUM_IONS = ("6Li", "7Li")

#: Default full width of an integration window (u).
DEFAULT_WINDOW_U = 0.3

_NAME = re.compile(r"^(\d+)([A-Z][a-z]?)\+?$")
_REVERSED = re.compile(r"^([A-Z][a-z]?)(\d+)\+?$")
_ELEMENT = re.compile(r"^([A-Z][a-z]?)\+?$")


def element_of(name: str) -> str:
    """The element symbol of an isotope-first ion name (``"59Co"`` -> ``"Co"``); a user ion's name
    without a mass number is returned as given (``"CoO"`` -> ``"CoO"``).

    Examples
    --------
    >>> element_of("106Pd"), element_of("7Li+"), element_of("CoO")
    ('Pd', 'Li', 'CoO')
    """
    m = _NAME.match(str(name).strip())
    return m[2] if m else str(name).strip()


def _known() -> str:
    return ", ".join(ION_TABLE)


def parse_ions(spec: str | Iterable[str] | Mapping[str, float]) -> dict[str, float]:
    """Ions to integrate: names of :data:`ION_TABLE` or user ions ``NAME=MASS``.

    Parameters
    ----------
    spec : str, sequence of str, or mapping
        A comma-separated string (``"7Li,6Li,59Co,CoO=74.93"``), a sequence of such items, or a
        mapping ``{name: mass}`` (u). Names are isotope-first with an optional ``+``
        (``7Li``, ``7Li+``); the ``+`` is dropped from the returned names.

    Returns
    -------
    dict
        ``{name: ion mass (u)}`` in the order given.

    Raises
    ------
    InputError
        An unknown name (the message lists the known ones and the ``NAME=MASS`` form), a mass
        that is not a positive number, a name given twice, or no ion at all.

    Examples
    --------
    >>> parse_ions("7Li+, 6Li, 59Co, CoO=74.928")
    {'7Li': 7.015455, '6Li': 6.014574, '59Co': 58.932646, 'CoO': 74.928}
    """
    if isinstance(spec, Mapping):
        items = [f"{k}={v}" for k, v in spec.items()]
    elif isinstance(spec, str):
        items = spec.split(",")
    else:
        try:
            items = [str(s) for s in spec]
        except TypeError:
            raise InputError(f"ions: give names such as '7Li,6Li,59Co' or NAME=MASS, got {spec!r}") from None
    out: dict[str, float] = {}
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        if "=" in item:
            name, _, value = (s.strip() for s in item.partition("="))
            try:
                mass = float(value)
            except ValueError:
                mass = float("nan")
            if not name or not np.isfinite(mass) or mass <= 0:
                raise InputError(f"ion {item!r}: write a user ion as NAME=MASS with the ion's mass in u, "
                                 "e.g. CoO=74.928")
            name = name.rstrip("+")
        else:
            m = _NAME.match(item)
            name = f"{m[1]}{m[2]}" if m else item
            if name not in ION_TABLE:
                hint = ""
                r = _REVERSED.match(item)
                e = _ELEMENT.match(item)
                if r and f"{r[2]}{r[1]}" in ION_TABLE:
                    hint = f" (did you mean {r[2]}{r[1]}? names put the mass number first)"
                elif e:
                    iso = [k for k in ION_TABLE if element_of(k) == e[1]]
                    if iso:
                        hint = f" (give the isotope: {' or '.join(iso)})"
                raise InputError(f"unknown ion {item!r}{hint}; known ions: {_known()}; "
                                 "or give any ion as NAME=MASS (u), e.g. CoO=74.928")
            mass = ION_TABLE[name]
        if name in out:
            raise InputError(f"ion {name!r} is given twice")
        out[name] = float(mass)
    if not out:
        raise InputError(f"no ion given ({spec!r}); known ions: {_known()}")
    return out


def ion_windows(masses: Iterable[float] | Mapping[str, float], *, window_u: float | None = None,
                widths: float | None = None, resolution: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Integration windows ``[lo, hi)`` (u) centred on each ion's mass.

    Parameters
    ----------
    masses : sequence of float or mapping name -> mass
        Ion masses (u), e.g. the output of :func:`parse_ions`.
    window_u : float, optional
        Full width of every window (u). The default, when neither this nor ``widths`` is given,
        is :data:`DEFAULT_WINDOW_U`.
    widths : float, optional
        Full width in peak widths: ``widths * FWHM`` with ``FWHM = m / resolution`` (needs
        ``resolution``).
    resolution : float, optional
        Mass resolving power ``m / dm`` (FWHM).

    Returns
    -------
    lo, hi : numpy.ndarray (ion,)
        Window bounds (u), in the order of ``masses``.

    Raises
    ------
    ConfigError
        Both or neither of ``widths`` and ``resolution``, ``window_u`` with them, a width that
        is not positive, or windows that overlap (the message names the ions).

    Examples
    --------
    >>> lo, hi = ion_windows([7.01546, 6.01457], widths=2, resolution=500)
    >>> lo.round(4).tolist(), hi.round(4).tolist()
    ([7.0014, 6.0025], [7.0295, 6.0266])
    """
    names = list(masses) if isinstance(masses, Mapping) else None
    m = np.asarray(list(masses.values()) if isinstance(masses, Mapping) else list(masses), dtype=np.float64)
    if m.ndim != 1 or m.size == 0 or not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise InputError(f"ion masses must be positive finite numbers (u), got {m.tolist()}")
    names = names or [f"{v:g} u" for v in m]
    if widths is not None or resolution is not None:
        if window_u is not None:
            raise ConfigError("give either window_u (u) or widths with resolution (peak widths), not both")
        if widths is None or resolution is None:
            raise ConfigError("windows in peak widths need both widths and resolution (m / FWHM)")
        for label, v in (("widths", widths), ("resolution", resolution)):
            if not (isinstance(v, (int, float, np.number)) and np.isfinite(v) and v > 0):
                raise ConfigError(f"{label} must be a positive number, got {v!r}")
        half = 0.5 * float(widths) * m / float(resolution)
    else:
        w = DEFAULT_WINDOW_U if window_u is None else window_u
        if isinstance(w, bool) or not (isinstance(w, (int, float, np.number)) and np.isfinite(w) and w > 0):
            raise ConfigError(f"window_u must be a positive width in u, got {window_u!r}")
        half = np.full(m.shape, 0.5 * float(w))
    lo, hi = m - half, m + half
    order = np.argsort(m, kind="stable")
    for i, j in zip(order[:-1], order[1:], strict=True):
        if hi[i] > lo[j]:
            raise ConfigError(f"the windows of {names[i]} [{lo[i]:.4f}, {hi[i]:.4f}) and {names[j]} "
                              f"[{lo[j]:.4f}, {hi[j]:.4f}) u overlap; use narrower windows")
    return lo, hi


def _check_windows(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    lo = np.atleast_1d(np.asarray(lo, dtype=np.float64))
    hi = np.atleast_1d(np.asarray(hi, dtype=np.float64))
    if lo.ndim != 1 or lo.shape != hi.shape or lo.size == 0:
        raise InputError(f"lo and hi must be 1-D arrays of one window per ion, got shapes {lo.shape} and {hi.shape}")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(hi > lo)):
        raise InputError("every window needs finite bounds with hi > lo (u)")
    order = np.argsort(lo, kind="stable")
    if np.any(hi[order][:-1] > lo[order][1:]):
        raise InputError("integration windows overlap; make them narrower (ion_windows checks this)")
    return lo, hi


def integrate_windows(counts, mass, lo, hi) -> np.ndarray:
    """Sum a dense spectrum's counts inside each window.

    Parameters
    ----------
    counts : array_like (..., mass)
        Counts per mass channel (any leading dims: pixels, states).
    mass : array_like (mass,)
        The mass axis (u), strictly increasing or strictly decreasing.
    lo, hi : array_like (ion,)
        Window bounds (u), from :func:`ion_windows`; a channel at mass ``m`` counts when
        ``lo <= m < hi``.

    Returns
    -------
    numpy.ndarray (ion, ...)
        Counts in each window (float64).

    Examples
    --------
    >>> mass = np.linspace(5.5, 7.5, 201)
    >>> spectrum = np.where(np.abs(mass - 7.015) < 0.02, 10.0, 0.0) + np.where(np.abs(mass - 6.015) < 0.02, 1.0, 0.0)
    >>> integrate_windows(spectrum[None], mass, [6.9, 5.9], [7.1, 6.1])
    array([[40.],
           [ 4.]])
    """
    lo, hi = _check_windows(lo, hi)
    c = np.asarray(counts)
    mz = np.asarray(mass, dtype=np.float64)
    if mz.ndim != 1 or c.ndim < 1 or c.shape[-1] != mz.size:
        raise DimensionError(f"counts {c.shape} must end with the mass axis of {mz.size} channels (mass is 1-D)")
    d = np.diff(mz)
    if mz.size > 1 and np.all(d < 0):
        mz, c = mz[::-1], c[..., ::-1]
    elif mz.size > 1 and not np.all(d > 0):
        raise InputError("the mass axis must be strictly increasing (u)")
    i0 = np.searchsorted(mz, lo, side="left")
    i1 = np.searchsorted(mz, hi, side="left")
    out = np.empty((lo.size,) + c.shape[:-1], dtype=np.float64)
    for k in range(lo.size):  # a loop over ions only: each a contiguous slice of channels
        out[k] = c[..., i0[k]:i1[k]].sum(axis=-1, dtype=np.float64)
    return out


def integrate_peaks(counts, peak_mass, lo, hi) -> np.ndarray:
    """Sum centroid peaks (the padded per-pixel peak lists of processed imzML) inside each window.

    Parameters
    ----------
    counts : array_like (..., peak)
        Counts of each peak.
    peak_mass : array_like (..., peak)
        Its mass (u); NaN pads a pixel's shorter list (those peaks are ignored). Broadcast
        against ``counts``.
    lo, hi : array_like (ion,)
        Window bounds (u); a peak at ``m`` counts when ``lo <= m < hi``.

    Returns
    -------
    numpy.ndarray (ion, ...)
        Counts in each window (float64), with the leading dims of ``counts``.

    Notes
    -----
    One ``searchsorted`` of every peak mass in the sorted window edges gives its window (odd
    interval index) or none (even), and one ``bincount`` sums them into ``(ion, pixel)``: no loop
    over pixels or ions.

    Examples
    --------
    >>> counts = np.array([[5, 2, 0], [1, 3, 4]])
    >>> peak_mass = np.array([[7.01, 6.02, np.nan], [6.99, 59.0, 7.2]])
    >>> integrate_peaks(counts, peak_mass, [6.9, 5.9], [7.1, 6.1])
    array([[5., 1.],
           [2., 0.]])
    """
    lo, hi = _check_windows(lo, hi)
    c = np.asarray(counts)
    pm = np.asarray(peak_mass, dtype=np.float64)
    if c.ndim < 1:
        raise DimensionError("counts must have a peak axis (..., peak)")
    try:
        c, pm = np.broadcast_arrays(c, pm)
    except ValueError:
        raise DimensionError(f"counts {c.shape} and peak_mass {pm.shape} must have the same (..., peak) shape") from None
    lead = c.shape[:-1]
    npix = int(np.prod(lead, dtype=np.int64))
    order = np.argsort(lo, kind="stable")
    edges = np.empty(2 * lo.size)
    edges[0::2], edges[1::2] = lo[order], hi[order]
    j = np.searchsorted(edges, pm.ravel(), side="right")  # NaN sorts last: an even index, outside
    inside = (j & 1).astype(bool)
    ion = order[(j[inside] - 1) >> 1]
    pix = np.flatnonzero(inside) // c.shape[-1]
    w = c.ravel()[inside].astype(np.float64, copy=False)
    out = np.bincount(ion * npix + pix, weights=w, minlength=lo.size * npix)
    return out.reshape((lo.size,) + lead)

r"""Normalised lithium signals with their counting errors.

Counts are Poisson: a count ``N`` has variance ``N``. Two ways a ratio ``r = x / y`` of counts
carries error (:func:`ratio_with_error`):

- **independent** counts (7Li over a matrix ion such as 59Co+): ``(sigma_r / r)^2 = (sigma_x /
  x)^2 + (sigma_y / y)^2`` - written as ``sigma_r = sqrt(sigma_x^2 + r^2 sigma_y^2) / y`` so
  that ``x = 0`` gives a finite error;
- **part of the whole** (7Li over the total ion count, which includes it): ``x`` and the rest
  ``y - x`` are independent, so ``sigma_r^2 = ((y - x)^2 sigma_x^2 + x^2 sigma_rest^2) / y^4``,
  which for Poisson counts is the binomial ``r (1 - r) / y``.

:func:`normalise` applies one of ``"none"``, ``"total"`` (the sum over the integrated ions, or
a given total ion count) or a matrix ion's name to an ``(ion, ...)`` stack;
:func:`relative_to_reference` divides every state by the reference (pristine) state with the
errors of both (states are independent measurements).

References
----------
P. R. Bevington, D. K. Robinson, *Data Reduction and Error Analysis for the Physical Sciences*,
3rd ed. (McGraw-Hill, 2003), ch. 3 (propagation of errors).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ionscope.errors import ConfigError, InputError

__all__ = ["ratio_with_error", "normalise", "relative_to_reference"]


def _arr(x, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        raise InputError(f"{what} is empty")
    return a


def ratio_with_error(numerator, denominator, *, numerator_err=None, denominator_err=None,
                     part: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``numerator / denominator`` with its propagated standard error.

    Parameters
    ----------
    numerator, denominator : array_like
        Counts (broadcast together).
    numerator_err, denominator_err : array_like, optional
        Their standard errors; Poisson (``sqrt`` of the counts) by default.
    part : bool
        The numerator is part of the denominator (a total ion count that includes it): the
        binomial propagation of the module docstring. Otherwise the two are independent.

    Returns
    -------
    ratio, error : numpy.ndarray
        NaN where the denominator is not positive.

    Examples
    --------
    >>> r, e = ratio_with_error(25, 100, part=True)        # binomial: sqrt(0.25 * 0.75 / 100)
    >>> float(r), round(float(e), 5)
    (0.25, 0.0433)
    >>> r, e = ratio_with_error(25, 100)                   # independent: 0.25 * sqrt(1/25 + 1/100)
    >>> round(float(e), 5)
    0.0559
    """
    x = _arr(numerator, "the numerator")
    y = _arr(denominator, "the denominator")
    try:
        x, y = np.broadcast_arrays(x, y)
    except ValueError:
        raise InputError(f"numerator {x.shape} and denominator {y.shape} do not broadcast") from None
    vx = np.abs(x) if numerator_err is None else np.asarray(numerator_err, dtype=np.float64) ** 2
    vy = np.abs(y) if denominator_err is None else np.asarray(denominator_err, dtype=np.float64) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        good = y > 0
        r = np.where(good, x / y, np.nan)
        if part:
            if np.any(x > y):
                raise InputError("with part=True the numerator is part of the denominator and cannot exceed it")
            v_rest = np.clip(vy - vx, 0.0, None)
            var = ((y - x) ** 2 * vx + x**2 * v_rest) / y**4
        else:
            var = (vx + r**2 * vy) / y**2
        err = np.where(good, np.sqrt(var), np.nan)
    return r, err


def normalise(counts, ions: Sequence[str], *, target: str = "7Li", by: str = "total", errors=None,
              total=None) -> tuple[np.ndarray, np.ndarray]:
    """One ion's map normalised, with its counting error.

    Parameters
    ----------
    counts : array_like (ion, ...)
        Integrated counts of every ion (dead-time corrected or not).
    ions : sequence of str
        The ion names along the first axis.
    target : str
        The ion to normalise (default 7Li).
    by : str
        ``"none"`` (counts), ``"total"`` (over the total ion count: ``total`` when given, else
        the sum over ``counts``; binomial errors) or an ion's name (over that ion's counts, e.g.
        ``"59Co"``; independent errors).
    errors : array_like (ion, ...), optional
        Standard errors of ``counts`` (e.g. of the dead-time correction); Poisson by default.
    total : array_like (...), optional
        A total ion count that includes ``target`` (e.g. the whole spectrum's sum); Poisson.

    Returns
    -------
    value, error : numpy.ndarray (...)

    Raises
    ------
    InputError
        ``counts`` does not hold one map per ion, or ``target`` / ``by`` names an ion that is
        not there.

    Examples
    --------
    >>> counts = np.array([[30.0], [70.0]])
    >>> v, e = normalise(counts, ["7Li", "59Co"], by="59Co")
    >>> round(float(v[0]), 4), round(float(e[0]), 4)
    (0.4286, 0.0935)
    """
    c = _arr(counts, "counts")
    names = [str(n) for n in ions]
    if c.ndim < 1 or c.shape[0] != len(names):
        raise InputError(f"counts {c.shape} must hold one map per ion along the first axis ({len(names)} ions)")
    err = None if errors is None else np.broadcast_to(np.asarray(errors, dtype=np.float64), c.shape)
    if target not in names:
        raise InputError(f"ion {target!r} is not among the integrated ions ({', '.join(names)})")
    i = names.index(target)
    x = c[i]
    xe = np.sqrt(np.abs(x)) if err is None else err[i]
    if by == "none":
        return x.copy(), np.array(xe, dtype=np.float64)
    if by == "total":
        if total is None:
            tot = c.sum(axis=0)
            te = None if err is None else np.sqrt((err**2).sum(axis=0))
        else:
            tot = np.broadcast_to(np.asarray(total, dtype=np.float64), x.shape)
            te = None if err is None else np.sqrt(np.clip(tot - x, 0, None) + xe**2)
        return ratio_with_error(x, tot, numerator_err=xe, denominator_err=te, part=True)
    if by in names:
        j = names.index(by)
        if j == i:
            raise ConfigError(f"normalising {target} by itself gives 1; choose total, none or a matrix ion")
        return ratio_with_error(x, c[j], numerator_err=xe, denominator_err=None if err is None else err[j])
    raise InputError(f"normalise by {by!r}: use 'total', 'none' or one of the integrated ions ({', '.join(names)})")


def relative_to_reference(values, errors, *, axis: int = 0, reference: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every entry along ``axis`` divided by the ``reference`` entry, with propagated errors.

    Parameters
    ----------
    values, errors : array_like
        Values (e.g. per phase and state) and their standard errors; entries along ``axis`` are
        independent measurements.
    axis : int
        The state axis.
    reference : int
        Index of the reference (pristine) state along ``axis``.

    Returns
    -------
    relative, error : numpy.ndarray
        ``v / v_ref`` with ``sqrt(sigma^2 + rel^2 sigma_ref^2) / |v_ref|``; the reference
        itself is 1 with error 0; NaN where ``v_ref`` is 0.

    Examples
    --------
    >>> rel, err = relative_to_reference([100.0, 60.0], [10.0, 6.0])
    >>> rel.tolist(), err.round(4).tolist()
    ([1.0, 0.6], [0.0, 0.0849])
    """
    v = _arr(values, "values")
    e = np.broadcast_to(np.asarray(errors, dtype=np.float64), v.shape)
    if v.ndim == 0:
        raise InputError("values need a state axis")
    axis = axis % v.ndim
    if not -v.shape[axis] <= reference < v.shape[axis]:
        raise InputError(f"reference {reference} is outside the {v.shape[axis]} states")
    v0 = np.take(v, [reference], axis=axis)
    e0 = np.take(e, [reference], axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(v0 != 0, v / v0, np.nan)
        err = np.where(v0 != 0, np.sqrt(e**2 + rel**2 * e0**2) / np.abs(v0), np.nan)
    idx = [slice(None)] * v.ndim
    idx[axis] = reference
    rel[tuple(idx)] = np.where(np.take(v0, 0, axis=axis) != 0, 1.0, np.nan)
    err[tuple(idx)] = np.where(np.take(v0, 0, axis=axis) != 0, 0.0, np.nan)
    return rel, err

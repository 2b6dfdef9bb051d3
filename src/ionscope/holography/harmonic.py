r"""Harmonic (Laplace) model of a stray-field phase, fitted by least squares on vacuum pixels.

The projected potential of charge-free space is a two-dimensional harmonic function
(:mod:`ionscope.holography.leakage` explains why and how the model is used). Here: the basis
(interior harmonics :math:`\mathrm{Re}/\mathrm{Im}\,\zeta^n`, line charges at given
positions, an exterior multipole series), the least-squares fit through the column-scaled
normal equations, the choice of the degree by spatial block cross-validation with the
one-standard-error rule on paired fold differences, and the exclusion of gross outliers
(unwrapping jumps) by a preliminary fit. Pure numpy on arrays; the xarray wrapper is
:func:`ionscope.holography.leakage.fit_stray_field`.

References
----------
A. Karageorghis, G. Fairweather, Comput. Methods Appl. Mech. Eng. 140 (1997) (method of
fundamental solutions). D.R. Roberts et al., Ecography 40, 913 (2017) (spatial block
cross-validation). T. Hastie, R. Tibshirani, J. Friedman, The Elements of Statistical Learning,
2nd ed. (2009), sec. 7.10 (one-standard-error rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ionscope.errors import ConfigError, InputError


def harmonic_basis(y_nm: np.ndarray, x_nm: np.ndarray, *, degree: int, center: tuple[float, float],
                   scale: float, sources: Sequence[tuple[float, float]] = (),
                   multipole_center: tuple[float, float] | None = None,
                   multipole_order: int = 0) -> tuple[np.ndarray, list[str]]:
    """Harmonic functions of position for the stray-field model.

    Parameters
    ----------
    y_nm, x_nm : ndarray
        Positions (nm), any shape.
    degree : int
        Highest power of the interior harmonics ``Re/Im ((z - c) / scale)**n``, ``z = x + iy``.
    center : (float, float)
        ``c`` as (y, x), nm.
    scale : float
        Length (nm) that makes ``|z - c| / scale`` of order 1 over the map.
    sources : sequence of (y, x)
        Positions (nm) of line charges ``ln(|z - z_k| / scale)`` (outside the vacuum).
    multipole_center : (y, x), optional
        Centre ``m`` (nm) of an exterior (multipole) series: ``ln|z - m|`` and
        ``Re/Im (scale / (z - m))**n`` for ``n <= multipole_order`` - the field of a charge
        distribution around ``m`` (e.g. inside the specimen), valid outside it.
    multipole_order : int
        Highest multipole order (0 = none).

    Returns
    -------
    design : ndarray (..., n_terms)
    names : list of str
    """
    zeta = ((x_nm - center[1]) + 1j * (y_nm - center[0])) / scale
    cols, names = [np.ones(zeta.shape)], ["1"]
    power = np.ones(zeta.shape, dtype=complex)
    for n in range(1, degree + 1):
        power = power * zeta
        cols += [power.real, power.imag]
        names += [f"Re z^{n}", f"Im z^{n}"]
    for k, (sy, sx) in enumerate(sources):
        r = np.hypot(x_nm - sx, y_nm - sy) / scale
        cols.append(np.log(np.maximum(r, 1e-12)))
        names.append(f"ln|z - s{k}|")
    if multipole_order > 0 and multipole_center is not None:
        w = ((x_nm - multipole_center[1]) + 1j * (y_nm - multipole_center[0])) / scale
        w = np.where(np.abs(w) < 1e-9, 1e-9, w)
        cols.append(np.log(np.abs(w)))
        names.append("ln|z - m|")
        inv = np.ones(w.shape, dtype=complex)
        for n in range(1, multipole_order + 1):
            inv = inv / w
            cols += [inv.real, inv.imag]
            names += [f"Re (z - m)^-{n}", f"Im (z - m)^-{n}"]
    return np.stack(cols, axis=-1), names


def _solve_gram(gram: np.ndarray, rhs: np.ndarray, ridge: float) -> np.ndarray:
    """Solve the (scaled) normal equations with a relative Tikhonov term."""
    d = np.sqrt(np.clip(np.diag(gram), 1e-300, None))
    g = gram / np.outer(d, d)
    if ridge > 0:
        g = g + (ridge * np.linalg.norm(g, 2)) * np.eye(g.shape[0])
    try:
        sol = np.linalg.solve(g, rhs / d)
    except np.linalg.LinAlgError:
        sol = np.linalg.lstsq(g, rhs / d, rcond=None)[0]
    return sol / d


def _cv_folds(yv: np.ndarray, xv: np.ndarray, y_nm: np.ndarray, x_nm: np.ndarray, folds: int,
              cv: str) -> np.ndarray:
    """Fold index of each vacuum pixel for the spatial cross-validation (see
    :func:`fit_harmonic_kernel`)."""
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ConfigError(f"folds must be an integer >= 2, got {folds!r}")
    if cv == "sectors":
        ang = np.arctan2(yv - yv.mean(), xv - xv.mean())
        return np.floor((ang + np.pi) / (2 * np.pi) * folds).astype(int) % folds
    if cv != "blocks":
        raise ConfigError(f"cv must be 'blocks' or 'sectors', got {cv!r}")
    # pixel area from the grid spacing, block side so that about four blocks fall in each fold
    dy = float(np.abs(np.diff(y_nm, axis=0)).max()) if y_nm.ndim == 2 and y_nm.shape[0] > 1 else 1.0
    dx = float(np.abs(np.diff(x_nm, axis=1)).max()) if x_nm.ndim == 2 and x_nm.shape[1] > 1 else 1.0
    side = max(np.sqrt(yv.size * dy * dx / (4.0 * folds)), 1e-12)
    iy = np.floor((yv - yv.min()) / side).astype(int)
    ix = np.floor((xv - xv.min()) / side).astype(int)
    return (ix + 2 * iy) % folds


def _one_standard_error(fold_sse: dict[int, np.ndarray], n: int, tolerance: float) -> int:
    """Lowest degree whose cross-validation error is not worse than the best one's by more
    than one standard error of their fold-wise (paired) difference, plus ``tolerance`` times
    the best error: the one-standard-error rule (Hastie, Tibshirani & Friedman, *The Elements
    of Statistical Learning*, 2nd ed., sec. 7.10) on paired differences, so that the noise
    common to both fits of a held-out fold cancels and a real lack of fit is detected even
    under strong white noise."""
    best = min(fold_sse, key=lambda d: fold_sse[d].sum())
    k = fold_sse[best].size
    for d in sorted(fold_sse):
        diff = fold_sse[d] - fold_sse[best]
        excess = diff.sum() / n
        se = float(np.std(diff * (k / n), ddof=1) / np.sqrt(k)) if k > 1 else 0.0
        if excess <= se + tolerance * fold_sse[best].sum() / n:
            return d
    return best


def _outlier_degree(top: int, n_src: int, n: int) -> int:
    """Degree of the preliminary fit that flags outliers: the highest tried, with at most a
    tenth as many terms as pixels."""
    d = top
    while d > 1 and 1 + 2 * d + n_src > 0.1 * n:
        d -= 1
    return d


def _inliers(a: np.ndarray, v: np.ndarray, k: float, ridge: float, rounds: int = 3) -> np.ndarray:
    """Pixels within ``k`` robust standard deviations (1.4826 MAD) of a least-squares fit of
    the columns ``a``, refitted on the kept pixels up to ``rounds`` times (isolated gross
    errors, e.g. 2 pi unwrapping jumps in a noisy vacuum, would otherwise pull the fit)."""
    keep = np.ones(v.size, dtype=bool)
    for _ in range(rounds):
        coef = _solve_gram(a[keep].T @ a[keep], a[keep].T @ v[keep], ridge)
        r = v - a @ coef
        centre = np.median(r[keep])
        sigma = 1.4826 * np.median(np.abs(r[keep] - centre))
        if not sigma > 0:
            break
        new = np.abs(r - centre) <= k * sigma
        if new.sum() < 0.5 * v.size or np.array_equal(new, keep):
            break
        keep = new
    return keep


def _jackknife_covariance(a: np.ndarray, v: np.ndarray, fold_id: np.ndarray, ridge: float) -> np.ndarray:
    """Delete-a-block jackknife covariance of the least-squares coefficients: the fit is
    repeated without each fold of spatial blocks (larger than the noise's correlation length,
    so correlated noise is accounted for) and ``(K - 1) / K`` times the scatter of the K
    coefficient vectors is returned (Efron & Stein 1981; Kunsch 1989)."""
    gram, rhs = a.T @ a, a.T @ v
    deleted = []
    for f in np.unique(fold_id):
        t = fold_id == f
        at = a[t]
        deleted.append(_solve_gram(gram - at.T @ at, rhs - at.T @ v[t], ridge))
    d = np.asarray(deleted)
    k = d.shape[0]
    if k < 2:
        return np.zeros((a.shape[1], a.shape[1]))
    dev = d - d.mean(axis=0)
    return (k - 1) / k * (dev.T @ dev)


#: Grid points per block when the model and its error are evaluated over the whole map.
_EVAL_BLOCK = 1 << 18


def _model_and_error(basis, y_nm: np.ndarray, x_nm: np.ndarray, a_next: np.ndarray, sub: np.ndarray,
                     v: np.ndarray, coef: np.ndarray, fold_id: np.ndarray, ridge: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The fitted model on the grid ``(y_nm, x_nm)`` and its standard error relative to its
    mean over the fitted pixels: the block-jackknife variance of the coefficients propagated to
    each point, plus the square of the change a fit one degree higher makes there (the
    truncation, which dominates the error deep in the specimen and which the jackknife cannot
    see). ``basis(y, x)`` gives the design one degree higher, whose columns ``sub`` the model
    uses (``a_next`` on the fitted pixels); evaluated in blocks of grid points."""
    a = a_next[:, sub]
    cov = _jackknife_covariance(a, v, fold_id, ridge)
    mean_sub = a.mean(axis=0)  # relative to the fitted vacuum's mean
    coef_next = None
    if a_next.shape[1] < 0.5 * v.size:
        coef_next = _solve_gram(a_next.T @ a_next, a_next.T @ v, ridge)
        offset_next = a_next.mean(axis=0) @ coef_next - mean_sub @ coef
    yf, xf = np.ravel(y_nm), np.ravel(x_nm)
    model = np.empty(yf.size)
    error = np.empty(yf.size)
    for start in range(0, yf.size, _EVAL_BLOCK):
        part = slice(start, start + _EVAL_BLOCK)
        full = basis(yf[part], xf[part])
        m = full[:, sub] @ coef
        centred = full[:, sub] - mean_sub
        var = np.sum((centred @ cov) * centred, axis=1)
        if coef_next is not None:
            var += (full @ coef_next - m - offset_next) ** 2
        model[part] = m
        error[part] = np.sqrt(np.maximum(var, 0.0))
    return model.reshape(np.shape(y_nm)), error.reshape(np.shape(y_nm))


def fit_harmonic_kernel(
    phase: np.ndarray,
    mask: np.ndarray,
    y_nm: np.ndarray,
    x_nm: np.ndarray,
    *,
    degree: int | str = "auto",
    max_degree: int = 8,
    sources: Sequence[tuple[float, float]] = (),
    ridge: float = 0.0,
    folds: int = 10,
    tolerance: float = 0.0,
    multipole_center: tuple[float, float] | None = None,
    multipole_order: int = 0,
    cv: str = "blocks",
    outlier_sigma: float | None = 5.0,
) -> dict[str, Any]:
    r"""Fit the harmonic stray-field model on ``mask`` pixels (kernel of :func:`fit_stray_field`).

    ``degree="auto"`` picks, among degrees 1..``max_degree``, the lowest whose spatial
    cross-validation error exceeds the best one's by no more than one standard error of their
    fold-wise paired difference (plus ``tolerance`` times the best error, default 0): a
    parsimonious model extrapolates into the specimen more safely, and the paired difference
    cancels the held-out noise common to both fits, so a lack of fit shows even under white
    noise as large as the field (a rule relative to the whole cross-validation error would
    take the plane there). The folds are spatial, so that a
    held-out part must be predicted from its neighbours and the noise's spatial correlation
    does not leak into the test: ``cv="blocks"`` (default) tiles the vacuum into square
    blocks of side :math:`\sqrt{A / (4 k)}` (A the vacuum area, k = ``folds``, so about four
    blocks per fold; much larger than a reconstruction's resolution) dealt to the folds in a
    staggered pattern, each fold spread over the whole vacuum (spatial block
    cross-validation, Roberts et al. 2017); ``cv="sectors"`` uses ``folds`` angular sectors
    around the vacuum's centroid (each fold predicted by extrapolation from the others - a
    stricter test that favours lower degrees, and a noisier one on thin vacuum bands). The
    fits solve the normal equations of the column-scaled design (the Gram matrix of the
    highest degree is built once; lower degrees and folds use its sub-blocks).

    With ``outlier_sigma`` (default 5), pixels further than that many robust standard
    deviations (1.4826 MAD) from a preliminary fit of the highest degree are left out of the
    cross-validation and the fit - isolated gross errors such as 2 pi unwrapping jumps in a
    noisy vacuum (a Gaussian pixel passes 5 sigma once in 1.7 million); None keeps every pixel.

    Returns
    -------
    dict
        ``model`` (the model on the whole grid, rad), ``degree``, ``coefficients``, ``names``,
        ``center_nm``, ``scale_nm``, ``sources_nm``, ``cv_rms_rad`` (per degree tried),
        ``residual_rms_rad`` (vacuum rms after subtraction), ``vacuum_rms_before_rad``,
        ``vacuum_pixels``, ``outlier_pixels`` (left out), ``model_error`` (on the whole grid,
        rad: the model's standard error relative to its mean over the fitted vacuum - a
        spatial block jackknife of the coefficients plus the change one more degree makes;
        on the twins the actual error is 0.4-3x this within 30 nm of the vacuum and 0.1-2.4x
        over a 100 nm deep lamella (benchmarks/holography_leakage.py); it does not know a
        reconstruction's own systematic errors, e.g. the single-biprism Fresnel streak).
    """
    if cv not in ("blocks", "sectors"):
        raise ConfigError(f"cv must be 'blocks' or 'sectors', got {cv!r}")
    sel = mask & np.isfinite(phase)
    if sel.sum() < 20:
        raise InputError(f"the vacuum region holds {int(sel.sum())} valid pixels; at least 20 are needed to fit a stray field")
    if isinstance(max_degree, bool) or not isinstance(max_degree, (int, np.integer)) or max_degree < 1:
        raise ConfigError(f"max_degree must be a positive integer, got {max_degree!r}")
    yv, xv, v = y_nm[sel], x_nm[sel], phase[sel].astype(np.float64)
    # expand about the vacuum's centroid: the interior harmonics converge in the largest disc
    # around it free of sources, which lie outside the vacuum
    center = (float(np.mean(yv)), float(np.mean(xv)))
    scale = float(max(np.max(np.hypot(yv - center[0], xv - center[1])), 1e-9))
    extra = dict(sources=sources, multipole_center=multipole_center, multipole_order=int(multipole_order))
    n_src = len(sources) + (2 * int(multipole_order) + 1 if multipole_order > 0 and multipole_center is not None else 0)
    if degree == "auto":
        top = int(max_degree)
    else:
        if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree < 0:
            raise ConfigError(f"degree must be a non-negative integer or 'auto', got {degree!r}")
        top = int(degree)
    a, names = harmonic_basis(yv, xv, degree=top, center=center, scale=scale, **extra)

    def columns(d: int) -> np.ndarray:  # interior harmonics up to degree d, then the sources
        return np.r_[np.arange(1 + 2 * d), np.arange(1 + 2 * top, 1 + 2 * top + n_src)]

    outliers = 0
    if outlier_sigma is not None:
        if not (isinstance(outlier_sigma, (int, float)) and not isinstance(outlier_sigma, bool)
                and outlier_sigma > 0):
            raise ConfigError(f"outlier_sigma must be a positive number or None, got {outlier_sigma!r}")
        keep = _inliers(a[:, columns(min(top, _outlier_degree(top, n_src, v.size)))], v, float(outlier_sigma), ridge)
        outliers = int(v.size - keep.sum())
        if outliers:
            yv, xv, v, a = yv[keep], xv[keep], v[keep], a[keep]

    cv_rms: dict[int, float] = {}
    if degree == "auto":
        fold_id = _cv_folds(yv, xv, y_nm, x_nm, folds, cv)
        grams = [(a[fold_id == f].T @ a[fold_id == f], a[fold_id == f].T @ v[fold_id == f]) for f in range(folds)]
        gram_all = sum(g for g, _ in grams)
        rhs_all = sum(r for _, r in grams)
        fold_sse: dict[int, np.ndarray] = {}
        for d in range(1, top + 1):
            cols = columns(d)
            if cols.size >= 0.5 * v.size:
                break
            sse = np.zeros(folds)
            for f, (g, r) in enumerate(grams):
                test = fold_id == f
                if not test.any():
                    continue
                coef = _solve_gram((gram_all - g)[np.ix_(cols, cols)], (rhs_all - r)[cols], ridge)
                sse[f] = float(np.sum((v[test] - a[test][:, cols] @ coef) ** 2))
            fold_sse[d] = sse
            cv_rms[d] = float(np.sqrt(sse.sum() / v.size))
        chosen = _one_standard_error(fold_sse, v.size, tolerance)
    else:
        chosen = top
    cols = columns(chosen)
    if cols.size >= v.size:
        raise InputError(f"{cols.size} model terms for {v.size} vacuum pixels; lower the degree")
    coef = _solve_gram(a[:, cols].T @ a[:, cols], a[:, cols].T @ v, ridge)
    resid = v - a[:, cols] @ coef
    # the model on the whole grid from a basis one degree higher (for the truncation estimate)
    nd = chosen + 1

    def basis(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return harmonic_basis(y, x, degree=nd, center=center, scale=scale, **extra)[0]

    sub = np.r_[np.arange(1 + 2 * chosen), np.arange(1 + 2 * nd, 1 + 2 * nd + n_src)]
    # on the fitted pixels the design one degree higher is a column subset of ``a`` when the
    # degree below the highest tried was chosen
    a_next = a[:, columns(nd)] if nd <= top else basis(yv, xv)
    model, model_error = _model_and_error(basis, y_nm, x_nm, a_next, sub, v, coef,
                                          _cv_folds(yv, xv, y_nm, x_nm, folds, "blocks"), ridge)
    return {"model": model, "model_error": model_error, "degree": chosen, "coefficients": coef, "names": [names[i] for i in cols],
            "center_nm": center, "scale_nm": scale, "sources_nm": [list(s) for s in sources],
            "cv_rms_rad": {str(k): val for k, val in cv_rms.items()}, "cv": cv,
            "residual_rms_rad": float(np.sqrt(np.mean(resid**2))),
            "vacuum_rms_before_rad": float(np.std(v)), "vacuum_pixels": int(sel.sum()),
            "outlier_pixels": outliers}


__all__ = ["harmonic_basis", "fit_harmonic_kernel"]

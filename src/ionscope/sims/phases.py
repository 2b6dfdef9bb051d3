r"""Phases from matrix-ion maps: a Gaussian mixture finds the pure phases, every pixel is unmixed.

At ~100 nm pixels and particles 200-600 nm across, a large share of the pixels hold two or three
phases, so the phase map is not a clustering of pixels but an unmixing:

1. **Features.** The matrix ions (every ion but the Li isotopes, by default) of each pixel,
   divided by their sum and square-rooted (the Hellinger transform of a composition: equal
   Poisson noise, independent of the pixel's total yield).
2. **Pure phases.** A Gaussian mixture (scikit-learn ``GaussianMixture``, full covariances) on a
   random subset of the pixels; ``n_phases="auto"`` picks the number of components (2-6) with the
   least Bayesian information criterion. Each component is named from its characteristic ion -
   the most enriched relative to the other components among the ions that make up at least a
   fifth of its largest share: Co -> ``LiCoPO4``, Ti or Al -> ``LATP``, Pd -> ``Pd``, any other
   ion -> its element (``Au``). Components that get the same name (a phase split in two, or a
   component of mixed pixels) are one phase, represented by its purest component (the highest
   enrichment of the naming ion). Phases are ordered LiCoPO4, LATP, Pd, then the others by name.
3. **Endmembers.** The mean matrix-ion COUNTS per pixel of each phase's pure pixels: among the
   pixels of its components, those whose share of the naming ion lies within three binomial SDs
   (``sqrt(s (1 - s) / total)``) of the purest pixels' share ``s`` (the 99th percentile) - small
   grains have many mixed edge pixels, which a component's mean would include. After a first
   unmixing, each endmember is re-estimated from the phase's interior pixels (a 3 x 3
   neighbourhood of one majority phase), chosen by their neighbours and so free of the bias of
   selecting pixels by their own noisy composition (when a phase has at least ten).
4. **Unmixing.** Every pixel's counts = ``sum_p f_p E_p`` solved by non-negative least squares
   (:func:`nnls_kernel`: the exact solution over every subset of at most six phases, vectorised
   over pixels; ions weighted by ``1 / sqrt(mean counts)``, Poisson's variance stabilised), the
   coefficients scaled to sum to 1 (area fractions). The **majority phase** of a pixel is its
   largest fraction.

References
----------
G. Schwarz, Ann. Stat. 6, 461 (1978) (BIC). C. L. Lawson, R. J. Hanson, *Solving Least Squares
Problems* (Prentice-Hall, 1974), ch. 23 (NNLS). N. Keshava, J. F. Mustard, IEEE Signal Process.
Mag. 19, 44 (2002) (linear spectral unmixing). J. Aitchison, *The Statistical Analysis of
Compositional Data* (Chapman & Hall, 1986).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.sims.ions import LITHIUM_IONS, element_of
from ionscope.validation import SEED, Interval, Options, validate_params

__all__ = ["PHASE_OF_ELEMENT", "Phases", "phase_name", "segment_phases", "phases_from_labels", "unmix",
           "nnls_kernel"]

#: Phase names of characteristic elements (:doc:`/guide/sims`); other elements name themselves.
PHASE_OF_ELEMENT = {"Co": "LiCoPO4", "Ti": "LATP", "Al": "LATP", "Pd": "Pd"}

_MAX_PHASES = 6


def phase_name(ion: str) -> str:
    """The phase an ion characterises: ``"59Co"`` -> ``"LiCoPO4"``, ``"197Au"`` -> ``"Au"``.

    Examples
    --------
    >>> [phase_name(i) for i in ("59Co", "48Ti", "27Al", "106Pd", "197Au")]
    ['LiCoPO4', 'LATP', 'LATP', 'Pd', 'Au']
    """
    element = element_of(ion)
    return PHASE_OF_ELEMENT.get(element, element)


@dataclass
class Phases:
    """Phases of a field of view.

    Attributes
    ----------
    labels : numpy.ndarray (y, x) of int
        Majority phase: index into ``names`` of each pixel's largest fraction; -1 where a pixel
        has no matrix-ion counts (or no user label).
    names : list of str
        Phase names.
    fractions : numpy.ndarray (phase, y, x)
        Area fraction of each phase per pixel (summing to 1 where a pixel has counts).
    matrix : list of str
        The matrix ions.
    endmembers : numpy.ndarray (phase, matrix ion) or None
        Mean matrix-ion counts per pixel of each pure phase (what :func:`unmix` fits); None
        for user labels without counts.
    bic : dict
        ``{n_components: BIC}`` of the mixtures tried (empty for user labels).
    components : int
        Mixture components before same-named ones were merged (0 for user labels).
    """

    labels: np.ndarray
    names: list[str]
    fractions: np.ndarray
    matrix: list[str] = field(default_factory=list)
    endmembers: np.ndarray | None = None
    bic: dict = field(default_factory=dict)
    components: int = 0

    def index(self, name: str) -> int:
        """Index of the phase ``name`` (:class:`~ionscope.errors.InputError` when absent)."""
        if name not in self.names:
            raise InputError(f"no phase {name!r}; the phases are {', '.join(self.names)}")
        return self.names.index(name)


def nnls_kernel(b: np.ndarray, endmembers: np.ndarray) -> np.ndarray:
    """Non-negative least squares ``min ||b_i - f_i E||, f_i >= 0`` for many pixels at once.

    Parameters
    ----------
    b : numpy.ndarray (pixel, m)
        Observations (e.g. weighted counts of m ions).
    endmembers : numpy.ndarray (k, m)
        The k endmembers (k <= 6: 2^k - 1 subsets are tried).

    Returns
    -------
    numpy.ndarray (pixel, k)
        The NNLS coefficients.

    Notes
    -----
    The NNLS solution is the unconstrained least-squares solution on its support. For every
    non-empty subset S of endmembers (with a well-conditioned Gram matrix) the least-squares
    coefficients ``f_S = P_S G_SS^-1`` (``P = b E^T``, ``G = E E^T``) are computed for all pixels
    at once; among the feasible ones (all >= 0) the one with the largest gain ``f_S . P_S`` (the
    least residual) is the solution, and 0 when none gains.

    Examples
    --------
    >>> E = np.array([[10.0, 0.0, 2.0], [0.0, 8.0, 2.0]])
    >>> nnls_kernel(np.array([[5.0, 4.0, 2.0], [-1.0, 8.0, 2.0]]), E).round(3)
    array([[0.5, 0.5],
           [0. , 1. ]])
    """
    b = np.asarray(b, dtype=np.float64)
    e = np.asarray(endmembers, dtype=np.float64)
    if e.ndim != 2 or b.ndim != 2 or b.shape[1] != e.shape[1]:
        raise DimensionError(f"b (pixel, m) {b.shape} and endmembers (k, m) {e.shape} do not match")
    k, m = e.shape
    if k > _MAX_PHASES:
        raise ConfigError(f"at most {_MAX_PHASES} endmembers can be unmixed, got {k}")
    p = b @ e.T
    g = e @ e.T
    best = np.zeros((b.shape[0], k))
    gain = np.zeros(b.shape[0])
    for subset in range(1, 2**k):
        s = [i for i in range(k) if subset >> i & 1]
        if len(s) > m:
            continue
        gs = g[np.ix_(s, s)]
        if np.linalg.cond(gs) > 1e10:
            continue
        f = p[:, s] @ np.linalg.inv(gs)
        gs_gain = np.einsum("ij,ij->i", f, p[:, s])
        better = np.all(f >= 0, axis=1) & (gs_gain > gain)
        if not better.any():
            continue
        rows = np.flatnonzero(better)
        best[rows] = 0.0
        best[rows[:, None], np.asarray(s)[None, :]] = f[rows]
        gain[rows] = gs_gain[rows]
    return best


def _matrix_indices(ions: Sequence[str], matrix) -> tuple[list[int], list[str]]:
    names = [str(i) for i in ions]
    if matrix is None:
        idx = [i for i, n in enumerate(names) if element_of(n) != "Li" and n not in LITHIUM_IONS]
    else:
        sel = [str(m) for m in ([matrix] if isinstance(matrix, str) else matrix)]
        missing = [m for m in sel if m not in names]
        if missing:
            raise InputError(f"matrix ions {missing} are not among the ions ({', '.join(names)})")
        idx = [names.index(m) for m in sel]
    if len(idx) < 2:
        raise InputError(f"phase segmentation needs at least two matrix ions (non-Li), got "
                         f"{[names[i] for i in idx]}; integrate e.g. 59Co, 48Ti, 106Pd too")
    return idx, [names[i] for i in idx]


def _counts_stack(counts, ions) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim not in (3, 4) or c.shape[-3] != len(ions):
        raise DimensionError(f"counts must be (ion, y, x) or (state, ion, y, x) with {len(ions)} ions, got {c.shape}")
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise InputError("counts must be finite and non-negative")
    return c


def _ion_weights(endmembers: np.ndarray) -> np.ndarray:
    return 1.0 / np.sqrt(np.maximum(endmembers.mean(axis=0), 1.0))


def _unmix_flat(c: np.ndarray, endmembers: np.ndarray, nonnegative: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(m, pixel) counts -> (k, pixel) fractions summing to 1, and the raw coefficient sums."""
    w = _ion_weights(endmembers)
    e = endmembers * w[None, :]
    if nonnegative:
        f = nnls_kernel((c * w[:, None]).T, e).T
    else:
        f = np.linalg.lstsq(e.T, c * w[:, None], rcond=None)[0]
    s = f.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(s > 0, f / s, 0.0)
    return frac, s


def unmix(counts, ions: Sequence[str], phases: Phases, *, nonnegative: bool = True) -> np.ndarray:
    """Area fractions of ``phases`` in every pixel of (another state's) counts.

    Parameters
    ----------
    counts : array_like (ion, y, x) or (state, ion, y, x)
        Integrated counts (registered onto the grid of the phases, e.g. each state of charge).
    ions : sequence of str
        Ion names of the ion axis (must include ``phases.matrix``).
    phases : Phases
        From :func:`segment_phases`, or :func:`phases_from_labels` with counts.
    nonnegative : bool
        Non-negative least squares (True: fractions in [0, 1], for maps and the majority phase)
        or ordinary least squares (False: fractions may dip below 0 or exceed 1 with the noise,
        but are unbiased - a pure pixel's NNLS fractions are biased away from 0 and 1 by the
        constraint, which biases a Li quantification whose phases hold different Li; use
        these for :func:`~ionscope.sims.quantify.phase_lithium`).

    Returns
    -------
    numpy.ndarray (phase, y, x) or (state, phase, y, x)
        Fractions summing to 1 (0 where a pixel has no matrix counts).
    """
    if phases.endmembers is None:
        raise InputError("these phases have no endmembers (user labels without counts): nothing to unmix onto")
    c = _counts_stack(counts, ions)
    idx, _ = _matrix_indices(ions, phases.matrix)
    sub = c[..., idx, :, :]
    lead = sub.shape[:-3]
    m, ny, nx = sub.shape[-3:]
    flat = np.moveaxis(sub.reshape((-1, m, ny * nx)), 1, 0).reshape(m, -1)
    frac, _ = _unmix_flat(flat, phases.endmembers, nonnegative)
    k = frac.shape[0]
    out = frac.reshape(k, -1, ny, nx)
    return np.moveaxis(out, 0, 1).reshape(lead + (k, ny, nx)) if lead else out[:, 0]


def _endmember(flat: np.ndarray, share: np.ndarray, total: np.ndarray, pool: np.ndarray,
               fallback: np.ndarray) -> np.ndarray:
    """Mean counts of the pixels of ``pool`` whose share of the naming ion is within 3 binomial SDs
    of the purest (the 99th percentile): pure pixels, not the phase's mixed edge pixels."""
    if pool.sum() < 3:
        return fallback
    top = float(np.percentile(share[pool], 99))
    t = np.maximum(total, 1.0)
    sd = np.sqrt(np.maximum(top * (1 - top), 1.0 / t) / t)  # at least one count of another ion
    pure = pool & (share >= top - 3 * sd)
    return flat[:, pure].mean(axis=1) if pure.sum() >= 3 else fallback


def _interior(labels: np.ndarray) -> np.ndarray:
    """Labels where the 3 x 3 neighbourhood holds one label, -1 elsewhere."""
    import scipy.ndimage as ndi

    lo = ndi.grey_erosion(labels, size=3, mode="nearest")
    hi = ndi.grey_dilation(labels, size=3, mode="nearest")
    return np.where(lo == hi, labels, -1)


def purify_endmembers(endmembers: np.ndarray, characteristic: Sequence[int], *, tolerance: float = 0.05,
                      threshold: float = 0.02) -> np.ndarray:
    """Endmembers cleared of the other phases mixed into them, assuming each phase's characteristic
    ion (the one it is named after: Co+ for LiCoPO4, Ti+ for LATP, Pd+ for Pd) comes from that
    phase alone.

    A phase smaller than a pixel (Pd grains of 20-45 nm radius at 100 nm pixels) has no pure
    pixels: its measured endmember is a mixture ``E' = M E`` of the true ones, with mixing
    fractions ``M`` (rows summing to 1). On the characteristic ions the true endmembers are
    diagonal, ``E[:, c] = diag(y)``, so ``E'[:, c] = M diag(y)``: the row sums give
    ``E'[:, c] w = 1`` with ``w = 1 / y``, hence ``M = E'[:, c] diag(w)`` and ``E = M^-1 E'``.

    Parameters
    ----------
    endmembers : numpy.ndarray (phase, ion)
        Measured endmembers (mean counts of each phase's purest pixels).
    characteristic : sequence of int
        Index (along the ion axis) of each phase's characteristic ion, all different.
    tolerance : float
        Largest negative mixing fraction accepted as noise.
    threshold : float
        An endmember is cleared only when another phase makes up at least this fraction of it:
        smaller amounts are taken as a background of the characteristic ions (a detector
        background, a trace), not as mixing, and such an endmember is left alone.

    Returns
    -------
    numpy.ndarray (phase, ion)
        The cleared endmembers (clipped at 0), or ``endmembers`` itself (the same object) when the
        model does not apply: repeated characteristic ions, a singular system, negative yields or
        mixing fractions below ``-tolerance``, or a phase that would be mostly another.

    Examples
    --------
    >>> true = np.array([[100.0, 0.0, 20.0], [0.0, 50.0, 20.0]])      # ions: Co, Ti, P
    >>> mixed = np.array([[1.0, 0.0], [0.3, 0.7]]) @ true            # phase 2 never pure
    >>> purify_endmembers(mixed, [0, 1]).round(6).tolist()
    [[100.0, 0.0, 20.0], [0.0, 50.0, 20.0]]
    """
    e = np.asarray(endmembers, dtype=np.float64)
    c = [int(i) for i in characteristic]
    k = e.shape[0]
    if len(c) != k or len(set(c)) != k or k < 2:
        return endmembers
    sub = e[:, c]
    try:
        w = np.linalg.solve(sub, np.ones(k))
    except np.linalg.LinAlgError:
        return endmembers
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        return endmembers
    m = sub * w[None, :]
    if np.any(m < -tolerance) or np.any(np.diag(m) < 0.5):
        return endmembers
    mixed = ((~np.eye(k, dtype=bool)) & (m >= threshold)).any(axis=1)  # rows that are mixtures
    if not mixed.any():
        return endmembers
    m = np.where(mixed[:, None], m, np.eye(k))
    try:
        out = np.linalg.solve(m, e)
    except np.linalg.LinAlgError:
        return endmembers
    return np.clip(out, 0.0, None)


def _characteristic(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per component: the index of its characteristic ion and its enrichment."""
    comp = means / np.maximum(means.sum(axis=1, keepdims=True), 1e-300)
    enrich = comp / np.maximum(comp.mean(axis=0, keepdims=True), 1e-300)
    eligible = comp >= 0.2 * comp.max(axis=1, keepdims=True)
    score = np.where(eligible, enrich, -np.inf)
    j = np.argmax(score, axis=1)
    return j, score[np.arange(len(j)), j]


@validate_params({"n_phases": [Options({"auto"}), Interval(int, 1, _MAX_PHASES)], "seed": [SEED],
                  "max_fit_pixels": [Interval(int, 100, None)],
                  "purity": [Interval(float, 0, 1, closed="neither")]})
def segment_phases(counts, ions: Sequence[str], *, matrix: Sequence[str] | None = None,
                   n_phases: str | int = "auto", seed: int = 0, max_fit_pixels: int = 5000,
                   purity: float = 0.95) -> Phases:
    """Phases of one field of view from its matrix-ion maps (module docstring).

    Parameters
    ----------
    counts : array_like (ion, y, x)
        Integrated counts per ion (e.g. the pristine state's).
    ions : sequence of str
        Ion names along the first axis (``"59Co"``, ``"48Ti"``, ...).
    matrix : sequence of str, optional
        Matrix ions; every ion but the Li isotopes by default.
    n_phases : "auto" or int
        Mixture components: chosen by BIC over 2..6, or given (1..6).
    seed : int
        Seed of the pixel subset and of the mixture's initialisation.
    max_fit_pixels : int
        The mixture is fitted on at most this many pixels (a random subset).
    purity : float
        Least posterior probability of a pixel that defines its phase's endmember.

    Returns
    -------
    Phases
        Majority labels, names, fractions, endmembers, the BIC of each mixture tried.

    Raises
    ------
    DimensionError
        ``counts`` is not ``(ion, y, x)`` with one map per ion.
    InputError
        Fewer than two matrix ions, negative or non-finite counts, too few pixels with matrix
        counts, or a phase without confidently pure pixels.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> cobalt = np.zeros((32, 32)); cobalt[:, :12] = 1; cobalt[:, 12] = 0.7   # a mixed column
    >>> pure = np.array([[60.0, 30.0, 0.5], [1.0, 40.0, 50.0]])   # 59Co, 31P, 48Ti per pixel
    >>> frac = np.stack([cobalt, 1 - cobalt])
    >>> counts = rng.poisson(np.einsum("pyx,pi->iyx", frac, pure))
    >>> phases = segment_phases(counts, ["59Co", "31P", "48Ti"], n_phases=2)
    >>> phases.names, int((phases.labels == phases.index("LiCoPO4")).sum())
    (['LiCoPO4', 'LATP'], 416)
    """
    c = _counts_stack(counts, ions)
    if c.ndim != 3:
        raise DimensionError(f"segment_phases takes one state's counts (ion, y, x), got {c.shape}; "
                             "unmix other states with unmix()")
    idx, matrix_names = _matrix_indices(ions, matrix)
    ny, nx = c.shape[1:]
    flat = c[idx].reshape(len(idx), -1)
    total = flat.sum(axis=0)
    has = total > 0
    if has.sum() < 20:
        raise InputError(f"only {int(has.sum())} pixels have matrix-ion counts: too few to find phases")
    strong = has & (total >= 0.25 * np.median(total[has]))
    features = np.sqrt(flat / np.where(has, total, 1.0)).T
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(strong)
    fit_idx = pool if pool.size <= max_fit_pixels else np.sort(rng.choice(pool, max_fit_pixels, replace=False))
    candidates = range(2, _MAX_PHASES + 1) if n_phases == "auto" else [int(n_phases)]
    from sklearn.mixture import GaussianMixture

    bic: dict[int, float] = {}
    best = None
    for k in candidates:
        if k > fit_idx.size // 10:
            break
        gm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed, init_params="k-means++",
                             max_iter=200).fit(features[fit_idx])
        bic[k] = float(gm.bic(features[fit_idx]))
        if best is None or bic[k] < bic[best[0]]:
            best = (k, gm)
    if best is None:
        raise InputError(f"too few pixels with matrix-ion counts ({fit_idx.size}) for a mixture of {min(candidates)}")
    k, gm = best
    post = np.zeros((flat.shape[1], k))
    post[has] = gm.predict_proba(features[has])
    comp = np.argmax(post, axis=1)
    means = np.empty((k, len(idx)))
    sizes = np.zeros(k, dtype=int)
    for j in range(k):
        sure = has & (post[:, j] >= purity)
        if sure.sum() < 3:
            sure = has & (comp == j)
        sizes[j] = int(sure.sum())
        means[j] = flat[:, sure].mean(axis=1) if sizes[j] else 0.0
    used = sizes > 0
    ion_j, score = _characteristic(means[used])
    comps = np.flatnonzero(used)
    names_c = [phase_name(matrix_names[j]) for j in ion_j]
    share = flat / np.where(has, total, 1.0)
    # same-named components are one phase; its endmember: the pixels as pure as its purest ones
    names: list[str] = []
    ends = []
    char: list[int] = []
    canonical = list(dict.fromkeys(PHASE_OF_ELEMENT.values()))
    for name in sorted(set(names_c), key=lambda n: (canonical.index(n) if n in canonical else len(canonical), n)):
        members = [i for i, n in enumerate(names_c) if n == name]
        keep = max(members, key=lambda i: score[i])
        ends.append(_endmember(flat, share[ion_j[keep]], total, strong & np.isin(comp, comps[members]),
                               means[comps[keep]]))
        names.append(name)
        char.append(int(ion_j[keep]))
    endmembers = np.asarray(ends)
    if len(names) > _MAX_PHASES:  # pragma: no cover - at most six components
        raise InputError("too many phases")
    frac, s = _unmix_flat(flat, endmembers)
    # refine: the interior pixels of each phase (their 3 x 3 neighbourhood has one majority
    # phase) are chosen by their neighbours, not by their own noise: an unbiased endmember
    labels = np.where(s > 0, np.argmax(frac, axis=0), -1).reshape(ny, nx)
    interior = _interior(labels).ravel()
    refined = False
    for p in range(len(names)):
        sel = interior == p
        if sel.sum() >= 10:
            endmembers[p] = flat[:, sel].mean(axis=1)
            refined = True
    purified = purify_endmembers(endmembers, char)
    if refined or purified is not endmembers:
        endmembers = purified
        frac, s = _unmix_flat(flat, endmembers)
    labels = np.where(s > 0, np.argmax(frac, axis=0), -1).reshape(ny, nx).astype(np.int32)
    return Phases(labels, names, frac.reshape(len(names), ny, nx), matrix_names, endmembers, bic, k)


def phases_from_labels(labels, names: Sequence[str] | Mapping[int, str], *, counts=None,
                       ions: Sequence[str] | None = None, matrix: Sequence[str] | None = None) -> Phases:
    """Phases from a user's label image.

    Parameters
    ----------
    labels : array_like (y, x) of int
        Phase codes. With ``names`` a sequence, codes ``0..len(names) - 1`` and negative codes
        (unassigned); with a mapping ``{code: name}`` (e.g. ``{1: "LiCoPO4", 2: "LATP"}``,
        0 = background), unlisted codes are unassigned.
    names : sequence of str or mapping int -> str
        Phase names.
    counts : array_like (ion, y, x), optional
        Integrated counts: the endmembers (mean matrix counts per label) are then kept, so that
        other states can be unmixed with :func:`unmix`.
    ions : sequence of str, optional
        Ion names of ``counts``.
    matrix : sequence of str, optional
        Matrix ions (default every ion but the Li isotopes).

    Returns
    -------
    Phases
        ``labels`` recoded ``0..k-1`` (-1 unassigned) and one-hot ``fractions``.

    Raises
    ------
    InputError
        Labels that are not an integer image, codes without a name, names given twice, a named
        phase without pixels.

    Examples
    --------
    >>> p = phases_from_labels(np.array([[1, 1], [2, 0]]), {1: "LiCoPO4", 2: "LATP"})
    >>> p.labels.tolist(), p.names, p.fractions.sum(axis=0).tolist()
    ([[0, 0], [1, -1]], ['LiCoPO4', 'LATP'], [[1.0, 1.0], [1.0, 0.0]])
    """
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise DimensionError(f"a label image is (y, x), got shape {lab.shape}")
    if lab.dtype.kind == "f":
        if not np.all(np.isfinite(lab)) or np.any(lab != np.round(lab)):
            raise InputError("phase labels must be whole numbers (integer codes)")
        lab = lab.astype(np.int64)
    elif lab.dtype.kind not in "iu":
        raise InputError(f"phase labels must be integer codes, got {lab.dtype}")
    codes = dict(enumerate(names)) if not isinstance(names, Mapping) else {int(k): str(v) for k, v in names.items()}
    if not codes:
        raise InputError("no phase names given")
    if len(set(codes.values())) != len(codes):
        raise InputError(f"phase names must differ, got {list(codes.values())}")
    if not isinstance(names, Mapping):
        bad = np.unique(lab[lab >= len(codes)])
        if bad.size:
            raise InputError(f"label codes {bad.tolist()} have no name ({len(codes)} names for codes 0..{len(codes) - 1})")
    out = np.full(lab.shape, -1, dtype=np.int32)
    for i, code in enumerate(codes):
        out[lab == code] = i
    empty = [codes[c] for i, c in enumerate(codes) if not np.any(out == i)]
    if empty:
        raise InputError(f"phases {empty} have no pixels in the label image")
    k = len(codes)
    frac = (out[None] == np.arange(k)[:, None, None]).astype(np.float64)
    endmembers, matrix_names = None, []
    if counts is not None:
        if ions is None:
            raise InputError("give the ion names of counts")
        c = _counts_stack(counts, ions)
        if c.ndim != 3 or c.shape[1:] != lab.shape:
            raise DimensionError(f"counts {c.shape} must be (ion, y, x) on the label image's grid {lab.shape}")
        idx, matrix_names = _matrix_indices(ions, matrix)
        flat = c[idx].reshape(len(idx), -1)
        endmembers = np.stack([flat[:, out.ravel() == i].mean(axis=1) for i in range(k)])
        if k > _MAX_PHASES:
            endmembers = None
    return Phases(out, list(codes.values()), frac, matrix_names, endmembers, {}, 0)

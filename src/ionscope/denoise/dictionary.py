r"""Dictionaries for sparse coding: overcomplete DCT start, K-SVD and online learning.

Conventions as in :mod:`ionscope.denoise.omp`: a dictionary is ``(n_atoms, n_features)`` with
unit-norm rows; training signals are rows of ``(n_signals, n_features)`` (flattened patches,
usually with their mean removed).

* :func:`overcomplete_dct` - separable overcomplete DCT for 2-D ``(p, p)`` or space-time
  ``(t, p, p)`` patches (Rubinstein's ``odctndict``; per axis, mean-free cosines
  ``cos(pi k n / m)``, ``k = 0..m-1``, whose Kronecker products are the atoms).
* :func:`ksvd` - K-SVD (Aharon, Elad & Bruckstein 2006): alternate Batch-OMP sparse coding
  with atom-by-atom updates, each the best rank-1 approximation (SVD) of the residual
  restricted to the signals that use the atom; ``approximate=True`` replaces the SVD by one
  power-iteration step (approximate K-SVD, Rubinstein, Zibulevsky & Elad 2008). Atoms that no
  signal uses, or that nearly duplicate another atom, are replaced by the worst-represented
  signals. With sparsity-constrained coding (``n_nonzero`` and no ``tol``) a signal keeps
  its previous code when the new OMP code represents it worse, which makes the
  representation error non-increasing over iterations (OMP alone does not guarantee that).
* :func:`online_dictionary_learning` - mini-batch online learning (Mairal, Bach, Ponce &
  Sapiro 2009): sufficient statistics ``A = sum a a^T``, ``B = sum y a^T`` with a forgetting
  factor, and one pass of block-coordinate descent over the atoms per mini-batch (warm
  started). Codes come from Batch-OMP rather than the lasso of the paper.
* :func:`learn_dictionary` - one entry point: DCT start, subsampling of the training signals,
  then one of the learners; deterministic for a given ``seed``.

References
----------
M. Aharon, M. Elad and A. Bruckstein, "K-SVD: an algorithm for designing overcomplete
dictionaries for sparse representation", IEEE Trans. Signal Process. 54, 4311 (2006).
R. Rubinstein, M. Zibulevsky and M. Elad, Technion CS-2008-08 (2008).
J. Mairal, F. Bach, J. Ponce and G. Sapiro, "Online dictionary learning for sparse coding",
ICML 2009; J. Mach. Learn. Res. 11, 19 (2010).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence

import numpy as np
import scipy.linalg

from ionscope.blocks import single_threaded_blas
from ionscope.denoise.omp import DEFAULT_CHUNK, SparseCodes, sparse_code
from ionscope.errors import ConfigError, DimensionError, EmptyDataError, NonFiniteError

#: Learners accepted by :func:`learn_dictionary`.
METHODS = ("ksvd", "approximate-ksvd", "online")


@dataclasses.dataclass
class DictionaryLearningResult:
    """Outcome of a dictionary learner.

    Attributes
    ----------
    dictionary : ndarray, shape (n_atoms, n_features)
        Learned atoms (unit-norm rows).
    errors : list of float
        Root-mean-square representation error per feature, ``sqrt(||Y - X D||_F^2 / Y.size)``,
        after each iteration (K-SVD: after the dictionary update; online: over each epoch's
        mini-batches, measured on each batch before its update).
    n_replaced : list of int
        Atoms replaced by worst-represented signals in each iteration.
    codes : SparseCodes or None
        Codes of the training signals belonging to ``dictionary`` (K-SVD only).
    """

    dictionary: np.ndarray
    errors: list[float]
    n_replaced: list[int]
    codes: SparseCodes | None = None


# --------------------------------------------------------------------------- DCT start


def _odct_1d(length: int, n_atoms: int) -> np.ndarray:
    """``(n_atoms, length)`` 1-D overcomplete DCT: constant, then mean-free cosines."""
    n = np.arange(length)
    k = np.arange(n_atoms)[:, None]
    atoms = np.cos(np.pi * k * n / n_atoms)
    atoms[1:] -= atoms[1:].mean(axis=1, keepdims=True)
    norms = np.linalg.norm(atoms, axis=1, keepdims=True)
    atoms = np.divide(atoms, norms, out=np.zeros_like(atoms), where=norms > 1e-12)
    return atoms


def overcomplete_dct(
    patch_shape: int | Sequence[int],
    n_atoms: int,
    *,
    dtype=np.float64,
) -> np.ndarray:
    """Separable overcomplete DCT dictionary for patches of ``patch_shape``.

    Each axis of length ``p_i > 2`` gets ``m_i = ceil(p_i r)`` 1-D atoms with the common
    redundancy ``r`` that makes ``prod m_i >= n_atoms`` (axes of one or two pixels get
    ``m_i = p_i``: they have no further distinct directions); the atoms are the Kronecker
    products, ordered from low to high frequency (largest ``k_i / m_i``, then their sum), and
    the first ``n_atoms`` are kept. ``(8, 8)`` with 256 atoms gives Elad & Aharon's 16 x 16
    overcomplete DCT. Atom 0 is the constant; all others are mean-free.

    Parameters
    ----------
    patch_shape : int or sequence of int
        Patch size, e.g. ``8``, ``(8, 8)`` or ``(3, 8, 8)`` (time, y, x).
    n_atoms : int
        Number of atoms.

    Returns
    -------
    ndarray, shape (n_atoms, prod(patch_shape))
        Unit-norm rows (C order over the patch axes, as :class:`PatchGrid` flattens patches).

    Examples
    --------
    >>> D = overcomplete_dct(8, 256)
    >>> D.shape, bool(np.allclose(np.linalg.norm(D, axis=1), 1.0))
    ((256, 64), True)
    """
    shape = (int(patch_shape), int(patch_shape)) if np.ndim(patch_shape) == 0 else tuple(
        int(p) for p in patch_shape
    )
    if any(p < 1 for p in shape):
        raise ConfigError(f"patch_shape must be positive, got {shape}")
    n_atoms = int(n_atoms)
    if n_atoms < 1:
        raise ConfigError(f"n_atoms must be >= 1, got {n_atoms}")
    # axes of 1 or 2 pixels have only that many distinct mean-free directions: no redundancy
    long_axes = [p for p in shape if p > 2]
    short = int(np.prod([p for p in shape if p <= 2]))
    if not long_axes:
        if n_atoms > short:
            raise ConfigError(
                f"patches of shape {shape} have at most {short} distinct DCT atoms; "
                f"asked for {n_atoms}"
            )
        redundancy = 1.0
    else:
        redundancy = max(n_atoms / short / float(np.prod(long_axes)), 1e-12) ** (
            1.0 / len(long_axes)
        )
    counts = [p if p <= 2 else max(1, int(np.ceil(p * redundancy - 1e-9))) for p in shape]
    while int(np.prod(counts)) < n_atoms:  # rounding: grow the least redundant long axis
        ratios = [c / p if p > 2 else np.inf for c, p in zip(counts, shape)]
        counts[int(np.argmin(ratios))] += 1
    bases = [_odct_1d(p, m) for p, m in zip(shape, counts)]
    combos = list(itertools.product(*(range(m) for m in counts)))
    # lowest frequencies first: by the largest relative frequency over the axes (this keeps a
    # box of low frequencies, which spans all patches when the box has p_i frequencies per
    # axis), ties by their sum
    rel = np.array([[k / m for k, m in zip(c, counts)] for c in combos])
    order = np.lexsort((rel.sum(axis=1), rel.max(axis=1)))[:n_atoms]
    atoms = np.empty((n_atoms, int(np.prod(shape))), dtype=np.float64)
    for row, idx in enumerate(order):
        atom = bases[0][combos[idx][0]]
        for axis in range(1, len(shape)):
            atom = np.multiply.outer(atom, bases[axis][combos[idx][axis]])
        atoms[row] = atom.ravel()
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    return atoms.astype(dtype, copy=False)


# --------------------------------------------------------------------------- helpers


def _check_training(signals: np.ndarray, dictionary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    signals = np.asarray(signals)
    dictionary = np.asarray(dictionary)
    if signals.ndim != 2:
        raise DimensionError(
            f"training signals must be 2-D (n_signals, n_features), got {signals.shape}"
        )
    if signals.shape[0] == 0:
        raise EmptyDataError("no training signals")
    if dictionary.ndim != 2 or dictionary.shape[1] != signals.shape[1]:
        raise DimensionError(
            f"dictionary {dictionary.shape} must be (n_atoms, {signals.shape[1]}) to match the "
            "training signals"
        )
    if not (np.all(np.isfinite(signals)) and np.all(np.isfinite(dictionary))):
        raise NonFiniteError("training signals or dictionary hold NaN/inf values")
    dtype = np.result_type(signals, dictionary)
    if dtype not in (np.float32, np.float64):
        dtype = np.float64
    return np.asarray(signals, dtype=dtype), np.array(dictionary, dtype=dtype, copy=True)


def _normalise_rows(dictionary: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(dictionary, axis=1, keepdims=True)
    return np.divide(dictionary, norms, out=dictionary, where=norms > 0)


def _rms(residual_energy: float, size: int) -> float:
    return float(np.sqrt(max(residual_energy, 0.0) / max(size, 1)))


class _Replacer:
    """Hands out the worst-represented signals (largest residual energy), each only once.

    The residual energies are measured once, at the first request of a sweep (as ksvdbox
    measures them on a subset); later requests take the next worst signal from that ranking.
    """

    def __init__(self, signals: np.ndarray):
        self.signals = signals
        self.order: np.ndarray | None = None
        self.next = 0

    def atom(self, residual: np.ndarray) -> np.ndarray | None:
        if self.order is None:
            energy = np.vecdot(residual, residual)
            norms = np.vecdot(self.signals, self.signals)
            candidates = np.flatnonzero(norms > 0)
            self.order = candidates[np.argsort(-energy[candidates], kind="stable")]
        if self.next >= self.order.size:
            return None
        i = self.order[self.next]
        self.next += 1
        row = self.signals[i]
        return row / np.linalg.norm(row)


# --------------------------------------------------------------------------- K-SVD


@single_threaded_blas()
def ksvd(
    signals: np.ndarray,
    dictionary: np.ndarray,
    *,
    n_nonzero: int | None = None,
    tol: float | None = None,
    iterations: int = 10,
    approximate: bool = False,
    max_coherence: float | None = 0.99,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK,
    callback: Callable[[int, np.ndarray, float], None] | None = None,
) -> DictionaryLearningResult:
    """Learn a dictionary with K-SVD (exact or approximate) starting from ``dictionary``.

    Parameters
    ----------
    signals : ndarray, shape (n_signals, n_features)
        Training signals (rows), e.g. mean-removed noisy patches.
    dictionary : ndarray, shape (n_atoms, n_features)
        Initial atoms (normalised here), e.g. :func:`overcomplete_dct`.
    n_nonzero : int, optional
        Largest number of atoms per signal in the coding step.
    tol : float, optional
        Target squared residual norm per signal in the coding step (error-constrained coding,
        as K-SVD denoising uses with ``tol = n_features (C sigma)^2``).
    iterations : int
        Coding + update sweeps.
    approximate : bool
        One power-iteration step per atom instead of the SVD (approximate K-SVD).
    max_coherence : float or None
        After each sweep an atom whose absolute inner product with an earlier atom exceeds
        this is replaced (None: never).
    seed : int
        Seed of the atom update order.
    chunk_size : int
        Signals per Batch-OMP call.
    callback : callable, optional
        ``callback(iteration, dictionary, rms_error)`` after each iteration.

    Returns
    -------
    DictionaryLearningResult
        With the codes of the training signals.
    """
    Y, D = _check_training(signals, dictionary)
    if int(iterations) != iterations or iterations < 0:
        raise ConfigError(f"iterations must be a non-negative integer, got {iterations!r}")
    if max_coherence is not None and not 0 < max_coherence <= 1:
        raise ConfigError(f"max_coherence must be in (0, 1] or None, got {max_coherence!r}")
    D = _normalise_rows(D)
    n_atoms = D.shape[0]
    rng = np.random.default_rng(seed)
    errors: list[float] = []
    replaced: list[int] = []
    keep_best = tol is None
    prev_codes: SparseCodes | None = None
    residual = None
    codes = None
    for it in range(int(iterations)):
        codes = sparse_code(Y, D, n_nonzero=n_nonzero, tol=tol, chunk_size=chunk_size)
        new_residual = Y - codes.reconstruct(D)
        if keep_best and prev_codes is not None:
            # keep a signal's previous code (with the current atoms) when OMP did worse
            worse = np.einsum("ij,ij->i", new_residual, new_residual) > np.einsum(
                "ij,ij->i", residual, residual
            )
            if worse.any():
                codes = _merge_codes(codes, prev_codes, worse)
                new_residual[worse] = residual[worse]
        residual = new_residual
        csc = codes.to_csr().tocsc()
        csc.sort_indices()
        replacer = _Replacer(Y)
        n_rep = _update_atoms(D, csc, residual, rng.permutation(n_atoms), replacer, approximate)
        energy = float(np.einsum("ij,ij->", residual, residual))
        errors.append(_rms(energy, Y.size))
        if max_coherence is not None:
            n_rep += _clear_coherent(D, max_coherence, replacer, residual, csc)
            csc.eliminate_zeros()
        replaced.append(n_rep)
        codes = _codes_from_csc(csc, codes)
        prev_codes = codes
        if callback is not None:
            callback(it, D, errors[-1])
    return DictionaryLearningResult(D, errors, replaced, codes)


def _update_atoms(D: np.ndarray, csc, residual: np.ndarray, order: np.ndarray,
                  replacer: _Replacer, approximate: bool) -> int:
    """One K-SVD sweep over the atoms in ``order``; updates ``D``, the coefficients in
    ``csc`` and ``residual = Y - codes @ D`` in place. Returns the number of unused atoms
    replaced."""
    n_rep = 0
    for j in order:
        lo, hi = csc.indptr[j], csc.indptr[j + 1]
        if hi == lo:
            atom = replacer.atom(residual)
            if atom is not None:
                D[j] = atom
                n_rep += 1
            continue
        users = csc.indices[lo:hi]
        coef = csc.data[lo:hi]
        err = residual[users] + np.outer(coef, D[j])
        if approximate:
            # one power-iteration step from the current coefficients (Rubinstein et al.)
            atom = coef @ err
            norm = np.linalg.norm(atom)
            if norm <= 0:
                continue
            atom /= norm
            new_coef = err @ atom
        else:
            atom, new_coef = _rank1(err, D[j])
        residual[users] = err - np.outer(new_coef, atom)
        csc.data[lo:hi] = new_coef
        D[j] = atom
    return n_rep


def _rank1(err: np.ndarray, old_atom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best rank-1 approximation ``err ~ outer(coef, atom)`` with a unit-norm ``atom``.

    The leading right singular vector of ``err`` from the leading eigenvector of the smaller
    of ``err^T err`` and ``err err^T`` (float64, LAPACK ``syevr`` for one eigenpair), which is
    several times cheaper than a thin SVD for the tall, thin residuals of K-SVD. The sign
    follows the old atom.
    """
    e = np.asarray(err, dtype=np.float64)
    m, n = e.shape
    if m == 1:
        atom = e[0].copy()
    elif m >= n:
        _, vec = scipy.linalg.eigh(e.T @ e, subset_by_index=[n - 1, n - 1])
        atom = vec[:, 0]
    else:
        _, vec = scipy.linalg.eigh(e @ e.T, subset_by_index=[m - 1, m - 1])
        atom = vec[:, 0] @ e
    norm = np.linalg.norm(atom)
    if norm == 0:
        return old_atom.copy(), np.zeros(m, dtype=err.dtype)
    atom /= norm
    if atom @ old_atom < 0:
        atom = -atom
    return atom.astype(err.dtype), (e @ atom).astype(err.dtype)


def _merge_codes(new: SparseCodes, old: SparseCodes, use_old: np.ndarray) -> SparseCodes:
    width = max(new.indices.shape[1], old.indices.shape[1])
    idx = np.full((new.n_signals, width), -1, dtype=np.int32)
    val = np.zeros((new.n_signals, width), dtype=new.values.dtype)
    idx[:, : new.indices.shape[1]] = new.indices
    val[:, : new.values.shape[1]] = new.values
    idx[use_old] = -1
    val[use_old] = 0
    idx[use_old, : old.indices.shape[1]] = old.indices[use_old]
    val[use_old, : old.values.shape[1]] = old.values[use_old]
    return SparseCodes(idx, val, new.n_atoms)


def _codes_from_csc(csc, like: SparseCodes) -> SparseCodes:
    """Write the updated coefficients of ``csc`` back into the padded layout of ``like``."""
    csr = csc.tocsr()
    csr.sort_indices()
    idx = np.full_like(like.indices, -1)
    val = np.zeros_like(like.values)
    counts = np.diff(csr.indptr)
    rows = np.repeat(np.arange(csr.shape[0]), counts)
    slot = np.arange(csr.indices.size) - np.repeat(csr.indptr[:-1], counts)
    idx[rows, slot] = csr.indices
    val[rows, slot] = csr.data
    return SparseCodes(idx, val, like.n_atoms)


def _clear_coherent(D: np.ndarray, max_coherence: float, replacer: _Replacer,
                    residual: np.ndarray, csc) -> int:
    """Replace atoms nearly parallel to an earlier atom; their users lose that coefficient
    (``residual`` and ``csc`` are updated so that ``residual = Y - codes @ D`` still holds)."""
    gram = np.abs(D @ D.T)
    np.fill_diagonal(gram, 0.0)
    n = 0
    for j in range(1, D.shape[0]):
        if gram[j, :j].max() <= max_coherence:
            continue
        atom = replacer.atom(residual)
        if atom is None:
            break
        lo, hi = csc.indptr[j], csc.indptr[j + 1]
        if hi > lo:
            users = csc.indices[lo:hi]
            residual[users] += np.outer(csc.data[lo:hi], D[j])
            csc.data[lo:hi] = 0.0
        D[j] = atom
        row = np.abs(D @ atom)
        row[j] = 0.0
        gram[j, :] = row
        gram[:, j] = row
        n += 1
    return n


# --------------------------------------------------------------------------- online


@single_threaded_blas()
def online_dictionary_learning(
    signals: np.ndarray,
    dictionary: np.ndarray,
    *,
    n_nonzero: int | None = None,
    tol: float | None = None,
    batch_size: int = 256,
    epochs: int = 1,
    forget: float = 2.0,
    seed: int = 0,
    callback: Callable[[int, np.ndarray, float], None] | None = None,
) -> DictionaryLearningResult:
    """Online mini-batch dictionary learning (Mairal et al. 2009) with Batch-OMP codes.

    For the t-th mini-batch ``Y_t`` with codes ``X_t``:
    ``A <- beta A + X_t^T X_t``, ``B <- beta B + Y_t^T X_t`` with
    ``beta = (1 - 1/t)^forget``; then one block-coordinate pass over the atoms,
    ``u_j = d_j + (b_j - D^T a_j) / A_jj``, renormalised to unit norm (OMP codes need
    unit-norm atoms). An atom that has not been used (``A_jj ~ 0``) is replaced by the
    worst-represented signal of the batch.

    Parameters
    ----------
    signals : ndarray, shape (n_signals, n_features)
    dictionary : ndarray, shape (n_atoms, n_features)
        Initial atoms.
    n_nonzero, tol :
        Coding constraints, as in :func:`ksvd`.
    batch_size : int
        Signals per mini-batch.
    epochs : int
        Passes over the (shuffled) signals.
    forget : float
        Exponent rho of the forgetting factor ``(1 - 1/t)^rho`` (0: no forgetting, i.e.
        plain sums; 1: running mean; larger forgets the codes of early, poor dictionaries
        faster - 2 recovered planted dictionaries best in our tests).
    seed : int
        Seed of the shuffling.
    """
    Y, D = _check_training(signals, dictionary)
    if batch_size < 1 or epochs < 1:
        raise ConfigError(f"batch_size and epochs must be >= 1, got {batch_size} and {epochs}")
    D = _normalise_rows(D)
    n_atoms, n_features = D.shape
    rng = np.random.default_rng(seed)
    A = np.zeros((n_atoms, n_atoms), dtype=D.dtype)
    B = np.zeros((n_features, n_atoms), dtype=D.dtype)
    errors: list[float] = []
    replaced: list[int] = []
    t = 0
    for epoch in range(int(epochs)):
        order = rng.permutation(Y.shape[0])
        energy = 0.0
        n_rep = 0
        for start in range(0, Y.shape[0], int(batch_size)):
            batch = Y[order[start:start + batch_size]]
            codes = sparse_code(batch, D, n_nonzero=n_nonzero, tol=tol)
            X = codes.to_dense()
            res = batch - X @ D
            energy += float(np.einsum("ij,ij->", res, res))
            t += 1
            beta = (1.0 - 1.0 / t) ** forget if t > 1 else 0.0
            A *= beta
            B *= beta
            A += X.T @ X
            B += batch.T @ X
            replacer = _Replacer(batch)
            dead = 1e-10 * max(1.0, float(np.trace(A)))
            for j in range(n_atoms):
                if A[j, j] <= dead:
                    atom = replacer.atom(res)
                    if atom is not None:
                        D[j] = atom
                        n_rep += 1
                    continue
                u = D[j] + (B[:, j] - A[:, j] @ D) / A[j, j]
                norm = np.linalg.norm(u)
                if norm > 0:
                    D[j] = u / norm
        errors.append(_rms(energy, Y.size))
        replaced.append(n_rep)
        if callback is not None:
            callback(epoch, D, errors[-1])
    return DictionaryLearningResult(D, errors, replaced, None)


# --------------------------------------------------------------------------- entry point


def learn_dictionary(
    signals: np.ndarray,
    *,
    patch_shape: int | Sequence[int] | None = None,
    n_atoms: int = 256,
    initial: np.ndarray | None = None,
    method: str = "ksvd",
    n_nonzero: int | None = None,
    tol: float | None = None,
    iterations: int = 10,
    max_signals: int | None = 20000,
    seed: int = 0,
    **options,
) -> DictionaryLearningResult:
    """Learn a dictionary for ``signals`` (rows), starting from an overcomplete DCT.

    Parameters
    ----------
    signals : ndarray, shape (n_signals, n_features)
        Training signals: flattened (usually mean-removed) patches of the noisy data itself
        or of a separate, cleaner training set.
    patch_shape : int or sequence of int, optional
        Patch shape of the signals (for the DCT start); needed unless ``initial`` is given.
    n_atoms : int
        Number of atoms (when starting from the DCT).
    initial : ndarray, optional
        Starting dictionary ``(n_atoms, n_features)``.
    method : {"ksvd", "approximate-ksvd", "online"}
        Learner.
    n_nonzero, tol :
        Coding constraints (see :func:`ksvd`).
    iterations : int
        K-SVD iterations, or epochs of the online learner.
    max_signals : int or None
        Train on at most this many signals, drawn without replacement with ``seed``.
    seed : int
        Seed of the subsampling and of the learner.
    **options
        Passed to the learner (e.g. ``max_coherence``, ``batch_size``, ``forget``).
    """
    if method not in METHODS:
        raise ConfigError(f"unknown dictionary learner {method!r}; use one of {METHODS}")
    signals = np.asarray(signals)
    if signals.ndim != 2 or signals.shape[0] == 0:
        raise EmptyDataError(f"need a non-empty (n_signals, n_features) array, got {signals.shape}")
    rng = np.random.default_rng(seed)
    if max_signals is not None and signals.shape[0] > max_signals:
        pick = np.sort(rng.choice(signals.shape[0], size=int(max_signals), replace=False))
        signals = signals[pick]
    if initial is None:
        if patch_shape is None:
            raise ConfigError("learn_dictionary needs patch_shape (for the DCT start) or initial")
        initial = overcomplete_dct(patch_shape, n_atoms, dtype=signals.dtype)
        if initial.shape[1] != signals.shape[1]:
            raise DimensionError(
                f"patch_shape {patch_shape} has {initial.shape[1]} pixels but the signals have "
                f"{signals.shape[1]} features"
            )
    sub_seed = int(rng.integers(2**31))
    if method == "online":
        return online_dictionary_learning(
            signals, initial, n_nonzero=n_nonzero, tol=tol, epochs=max(int(iterations), 1),
            seed=sub_seed, **options,
        )
    return ksvd(
        signals, initial, n_nonzero=n_nonzero, tol=tol, iterations=iterations,
        approximate=(method == "approximate-ksvd"), seed=sub_seed, **options,
    )


__all__ = [
    "METHODS",
    "DictionaryLearningResult",
    "overcomplete_dct",
    "ksvd",
    "online_dictionary_learning",
    "learn_dictionary",
]

r"""Batch orthogonal matching pursuit (Batch-OMP) on a precomputed Gram matrix.

Conventions (those of scikit-learn's ``sparse_encode``): a dictionary is an array of shape
``(n_atoms, n_features)`` whose *rows* are unit-norm atoms, signals are rows of an array of
shape ``(n_signals, n_features)``, and codes have shape ``(n_signals, n_atoms)`` so that
``signals ~= codes @ dictionary``. The kernels take ``gram = D D^T`` (``(n_atoms, n_atoms)``)
and the correlations ``dty = Y D^T`` (``(n_signals, n_atoms)``), the latter computed as one
matrix product for a whole batch of signals.

Algorithm (Rubinstein, Zibulevsky & Elad 2008, "Batch-OMP"): per signal, the atom of largest
absolute correlation ``alpha = D^T y - G_{:,I} gamma_I`` joins the support ``I``; the Cholesky
factor of ``G_{I,I}`` grows by one row; ``gamma_I`` solves ``G_{I,I} gamma_I = (D^T y)_I``;
the squared residual follows the recursion ``eps_n = eps_{n-1} - delta_n + delta_{n-1}`` with
``delta_n = gamma_I^T G_{I,I} gamma_I`` and ``eps_0 = ||y||^2``. Here every signal of the batch
advances one atom per iteration *in lockstep*: supports, Cholesky factors and coefficients are
stacked arrays, and the factor is kept as its inverse ``L^{-1}`` so that the per-signal
triangular solves become batched matrix-vector products. Signals that reach their sparsity,
their residual tolerance or a degenerate step leave the active set (a mask compacts the
stacked arrays), so finished signals cost nothing in later iterations.

Stopping rules follow :func:`sklearn.linear_model.orthogonal_mp_gram`, so the two agree on the
same problems: ``tol`` bounds the *squared* residual norm ``||y - D a||^2``; a step stops
early when the best correlation satisfies ``alpha^2 < eps`` or the new Cholesky pivot is
``<= eps`` (``eps`` the machine epsilon of the dtype). Differences, on purpose:

* with both ``n_nonzero`` and ``tol`` the pursuit stops at whichever comes first (scikit-learn
  ignores ``n_nonzero`` when ``tol`` is given); this is the rule of K-SVD denoising;
* a signal with ``||y||^2 <= tol`` gets no atom at all (scikit-learn always takes one);
* an atom is never selected twice (scikit-learn stops instead; both only happen when the
  residual is numerically orthogonal to every atom);
* exact ties between correlations go to the atom of lowest index (scikit-learn's internal
  row swaps give a different order after the first step; exact ties are measure-zero for
  real data).

References
----------
R. Rubinstein, M. Zibulevsky and M. Elad, "Efficient implementation of the K-SVD algorithm
using batch orthogonal matching pursuit", Technion CS-2008-08 (2008).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ionscope.errors import ConfigError, DimensionError

#: Default number of signals coded per call of :func:`batch_omp_codes` in :func:`sparse_code`.
DEFAULT_CHUNK = 8192


@dataclasses.dataclass(frozen=True)
class SparseCodes:
    """Sparse codes of a batch of signals, stored as padded per-signal supports.

    Attributes
    ----------
    indices : ndarray of int32, shape (n_signals, width)
        Atom indices of each signal's support in the order they were selected; ``-1`` pads
        rows with fewer than ``width`` atoms.
    values : ndarray, shape (n_signals, width)
        The matching coefficients (0 in padded slots).
    n_atoms : int
        Number of atoms of the dictionary the codes refer to.
    """

    indices: np.ndarray
    values: np.ndarray
    n_atoms: int

    @property
    def n_signals(self) -> int:
        return int(self.indices.shape[0])

    @property
    def counts(self) -> np.ndarray:
        """Number of atoms used by each signal (int)."""
        return np.count_nonzero(self.indices >= 0, axis=1)

    def to_dense(self) -> np.ndarray:
        """Codes as a dense array of shape ``(n_signals, n_atoms)``."""
        out = np.zeros((self.n_signals, self.n_atoms), dtype=self.values.dtype)
        rows, slots = np.nonzero(self.indices >= 0)
        out[rows, self.indices[rows, slots]] = self.values[rows, slots]
        return out

    def to_csr(self) -> sp.csr_matrix:
        """Codes as a ``scipy.sparse`` CSR matrix of shape ``(n_signals, n_atoms)``."""
        rows, slots = np.nonzero(self.indices >= 0)
        return sp.csr_matrix(
            (self.values[rows, slots], (rows, self.indices[rows, slots])),
            shape=(self.n_signals, self.n_atoms),
        )

    def reconstruct(self, dictionary: np.ndarray) -> np.ndarray:
        """``codes @ dictionary``: approximations of the signals, ``(n_signals, n_features)``."""
        dictionary = np.asarray(dictionary)
        if dictionary.shape[0] != self.n_atoms:
            raise DimensionError(
                f"codes refer to {self.n_atoms} atoms but the dictionary has "
                f"{dictionary.shape[0]} rows"
            )
        out = np.zeros((self.n_signals, dictionary.shape[1]),
                       dtype=np.result_type(self.values, dictionary))
        for j in range(self.indices.shape[1]):
            idx = self.indices[:, j]
            used = idx >= 0
            if not used.any():
                continue
            if used.all():
                out += self.values[:, j, None] * dictionary[idx]
            else:
                out[used] += self.values[used, j, None] * dictionary[idx[used]]
        return out

    def take(self, rows: np.ndarray) -> SparseCodes:
        """The codes of a subset of signals (``rows``: integer or boolean index)."""
        return SparseCodes(self.indices[rows], self.values[rows], self.n_atoms)

    @staticmethod
    def concatenate(parts: Sequence[SparseCodes], n_atoms: int | None = None,
                    dtype=np.float64) -> SparseCodes:
        """Stack the codes of consecutive batches of signals."""
        if not parts:
            return SparseCodes(np.empty((0, 0), np.int32), np.empty((0, 0), dtype), n_atoms or 0)
        width = max(p.indices.shape[1] for p in parts)
        n = sum(p.n_signals for p in parts)
        idx = np.full((n, width), -1, dtype=np.int32)
        val = np.zeros((n, width), dtype=parts[0].values.dtype)
        row = 0
        for p in parts:
            idx[row:row + p.n_signals, : p.indices.shape[1]] = p.indices
            val[row:row + p.n_signals, : p.values.shape[1]] = p.values
            row += p.n_signals
        return SparseCodes(idx, val, parts[0].n_atoms if n_atoms is None else n_atoms)


# --------------------------------------------------------------------------- validation


def _float_dtype(*arrays: np.ndarray) -> np.dtype:
    dtype = np.result_type(*arrays)
    if dtype == np.float32 or dtype == np.float64:
        return np.dtype(dtype)
    return np.dtype(np.float64)


def _check_stopping(n_nonzero, tol, yty, n_atoms: int, n_signals: int, dtype):
    if n_nonzero is None and tol is None:
        # scikit-learn's default: 10 % of the atoms, at least one
        n_nonzero = max(int(0.1 * n_atoms), 1)
    if n_nonzero is not None:
        if isinstance(n_nonzero, (bool, np.bool_)) or int(n_nonzero) != n_nonzero:
            raise ConfigError(f"n_nonzero must be a positive integer, got {n_nonzero!r}")
        n_nonzero = int(n_nonzero)
        if n_nonzero < 1:
            raise ConfigError(f"n_nonzero must be at least 1, got {n_nonzero}")
        if n_nonzero > n_atoms:
            raise ConfigError(
                f"n_nonzero={n_nonzero} exceeds the number of atoms ({n_atoms}); "
                "a signal cannot use more atoms than the dictionary has"
            )
    tol_arr = None
    yty_arr = None
    if tol is not None:
        tol_arr = np.broadcast_to(np.asarray(tol, dtype=np.float64), (n_signals,))
        if not np.all(np.isfinite(tol_arr)) or np.any(tol_arr < 0):
            raise ConfigError("tol (the squared residual norm to reach) must be finite and >= 0")
        if yty is None:
            raise ConfigError(
                "tol needs yty, the squared norms ||y||^2 of the signals, to track the "
                "residual (pass yty=(signals**2).sum(axis=1))"
            )
        yty_arr = np.asarray(yty, dtype=dtype).reshape(-1)
        if yty_arr.shape != (n_signals,):
            raise DimensionError(
                f"yty has {yty_arr.size} values but there are {n_signals} signals"
            )
    return n_nonzero, tol_arr, yty_arr


# --------------------------------------------------------------------------- kernel


def batch_omp_codes(
    gram: np.ndarray,
    dty: np.ndarray,
    *,
    n_nonzero: int | None = None,
    tol: float | np.ndarray | None = None,
    yty: np.ndarray | None = None,
) -> SparseCodes:
    """Batch-OMP of many signals at once; returns the codes in sparse form.

    Parameters
    ----------
    gram : ndarray, shape (n_atoms, n_atoms)
        Gram matrix ``D D^T`` of the dictionary (rows of ``D`` are the atoms; OMP assumes
        unit-norm atoms).
    dty : ndarray, shape (n_signals, n_atoms) or (n_atoms,)
        Correlations ``Y D^T`` of the signals with the atoms.
    n_nonzero : int, optional
        Largest number of atoms per signal. When neither ``n_nonzero`` nor ``tol`` is given,
        10 % of the atoms (scikit-learn's default).
    tol : float or ndarray of shape (n_signals,), optional
        Target squared residual norm ``||y - D a||^2``; a signal stops as soon as its
        residual is at or below it (or it reaches ``n_nonzero`` atoms, if given).
    yty : ndarray, shape (n_signals,), optional
        Squared norms ``||y||^2`` of the signals; required with ``tol``.

    Returns
    -------
    SparseCodes
        In the dtype of the inputs (float32 stays float32; anything else becomes float64).
    """
    gram = np.asarray(gram)
    dty = np.asarray(dty)
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
        raise DimensionError(f"gram must be a square matrix, got shape {gram.shape}")
    if dty.ndim == 1:
        dty = dty[None, :]
    if dty.ndim != 2 or dty.shape[1] != gram.shape[0]:
        raise DimensionError(
            f"dty must have shape (n_signals, {gram.shape[0]}) to match the Gram matrix, "
            f"got {dty.shape}"
        )
    dtype = _float_dtype(gram, dty)
    gram = np.ascontiguousarray(gram, dtype=dtype)
    dty = np.ascontiguousarray(dty, dtype=dtype)
    n_signals, n_atoms = dty.shape
    n_nonzero, tol_arr, yty_arr = _check_stopping(n_nonzero, tol, yty, n_atoms, n_signals, dtype)
    kmax = n_atoms if n_nonzero is None else n_nonzero
    eps = np.finfo(dtype).eps
    gram_diag = np.diagonal(gram).copy()

    # outputs (grown in width as signals take more atoms)
    width0 = min(kmax, 8)
    out_idx = np.full((n_signals, width0), -1, dtype=np.int32)
    out_val = np.zeros((n_signals, width0), dtype=dtype)

    def finish(glob: np.ndarray, sel: np.ndarray, coef: np.ndarray) -> None:
        nonlocal out_idx, out_val
        n = sel.shape[1]
        if n == 0 or glob.size == 0:
            return
        if n > out_idx.shape[1]:
            new_w = min(kmax, max(n, 2 * out_idx.shape[1]))
            grow = new_w - out_idx.shape[1]
            out_idx = np.pad(out_idx, ((0, 0), (0, grow)), constant_values=-1)
            out_val = np.pad(out_val, ((0, 0), (0, grow)))
        out_idx[glob, :n] = sel
        out_val[glob, :n] = coef

    # state of the active signals (stacked)
    glob = np.arange(n_signals)
    dty_a = dty
    sel = np.empty((n_signals, 0), dtype=np.intp)      # supports I
    linv = np.empty((n_signals, 0, 0), dtype=dtype)    # inverse Cholesky factors L^-1
    z = np.empty((n_signals, 0), dtype=dtype)          # L^-1 (D^T y)_I
    gamma = np.empty((n_signals, 0), dtype=dtype)      # coefficients on I
    if tol_arr is not None:
        err = yty_arr.copy()
        delta_prev = np.zeros(n_signals, dtype=dtype)
        tol_a = tol_arr
        keep = ~(err <= tol_a)   # already within tolerance: no atom
        if not keep.all():
            glob, dty_a, err, delta_prev, tol_a = (
                glob[keep], dty_a[keep], err[keep], delta_prev[keep], tol_a[keep]
            )
            sel, linv, z, gamma = sel[keep], linv[keep], z[keep], gamma[keep]
    alpha = dty_a.copy()

    for n in range(kmax):
        na = glob.size
        if na == 0:
            break
        rows = np.arange(na)
        score = np.abs(alpha)
        if n:
            score[rows[:, None], sel] = -1.0   # never select an atom twice
        lam = np.argmax(score, axis=1)
        best = alpha[rows, lam]
        stop = best * best < eps
        # new row of the Cholesky factor: L w = G[I, lam], pivot = G[lam, lam] - w.w
        if n:
            g = gram[sel, lam[:, None]]                                # (na, n)
            w = np.einsum("aij,aj->ai", linv, g)
            pivot = gram_diag[lam] - np.einsum("ai,ai->a", w, w)
        else:
            w = np.empty((na, 0), dtype=dtype)
            pivot = gram_diag[lam].copy()
        stop |= ~(pivot > eps)
        if stop.any():
            finish(glob[stop], sel[stop], gamma[stop])
            keep = ~stop
            glob, dty_a, sel, linv, z, gamma, alpha = (
                glob[keep], dty_a[keep], sel[keep], linv[keep], z[keep], gamma[keep], alpha[keep]
            )
            lam, w, pivot = lam[keep], w[keep], pivot[keep]
            if tol_arr is not None:
                err, delta_prev, tol_a = err[keep], delta_prev[keep], tol_a[keep]
            na = glob.size
            if na == 0:
                break
            rows = np.arange(na)
        s = np.sqrt(pivot)
        # grow L^-1: [[L^-1, 0], [-(w^T L^-1)/s, 1/s]]
        new = np.zeros((na, n + 1, n + 1), dtype=dtype)
        new[:, :n, :n] = linv
        if n:
            new[:, n, :n] = -np.einsum("ai,aij->aj", w, linv) / s[:, None]
        new[:, n, n] = 1.0 / s
        linv = new
        z_n = (dty_a[rows, lam] - np.einsum("ai,ai->a", w, z)) / s
        z = np.concatenate([z, z_n[:, None]], axis=1)
        sel = np.concatenate([sel, lam[:, None]], axis=1)
        gamma = np.einsum("aji,aj->ai", linv, z)                        # L^-T z
        # beta = G_{:,I} gamma_I, alpha = D^T y - beta
        beta = gamma[:, 0, None] * gram[sel[:, 0]]
        for j in range(1, n + 1):
            beta += gamma[:, j, None] * gram[sel[:, j]]
        np.subtract(dty_a, beta, out=alpha)
        done = np.zeros(na, dtype=bool) if n + 1 < kmax else np.ones(na, dtype=bool)
        if tol_arr is not None:
            delta = np.einsum("ai,ai->a", gamma, np.take_along_axis(beta, sel, axis=1))
            err = err + delta_prev - delta
            delta_prev = delta
            done |= np.abs(err) <= tol_a
        if done.any():
            finish(glob[done], sel[done], gamma[done])
            if done.all():
                break
            keep = ~done
            glob, dty_a, sel, linv, z, gamma, alpha = (
                glob[keep], dty_a[keep], sel[keep], linv[keep], z[keep], gamma[keep], alpha[keep]
            )
            if tol_arr is not None:
                err, delta_prev, tol_a = err[keep], delta_prev[keep], tol_a[keep]
    used = int(np.count_nonzero(out_idx >= 0, axis=1).max()) if n_signals else 0
    return SparseCodes(out_idx[:, :used].copy(), out_val[:, :used].copy(), n_atoms)


def batch_omp(
    gram: np.ndarray,
    dty: np.ndarray,
    *,
    n_nonzero: int | None = None,
    tol: float | np.ndarray | None = None,
    yty: np.ndarray | None = None,
) -> np.ndarray:
    """Batch-OMP of many signals; dense codes.

    Same parameters as :func:`batch_omp_codes`; returns ``(n_signals, n_atoms)`` (or
    ``(n_atoms,)`` for a 1-D ``dty``). Note the layout: scikit-learn's
    :func:`~sklearn.linear_model.orthogonal_mp_gram` takes ``Xy`` as ``(n_atoms, n_signals)``
    and returns the transpose of this.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> D = rng.normal(size=(20, 40)); D /= np.linalg.norm(D, axis=1, keepdims=True)
    >>> a = np.zeros(20); a[[3, 7]] = [1.5, -2.0]
    >>> y = a @ D
    >>> code = batch_omp(D @ D.T, y @ D.T, n_nonzero=2)
    >>> np.flatnonzero(code).tolist(), bool(np.allclose(code, a))
    ([3, 7], True)
    """
    one = np.ndim(dty) == 1
    codes = batch_omp_codes(gram, dty, n_nonzero=n_nonzero, tol=tol, yty=yty)
    dense = codes.to_dense()
    return dense[0] if one else dense


def sparse_code(
    signals: np.ndarray,
    dictionary: np.ndarray,
    *,
    n_nonzero: int | None = None,
    tol: float | np.ndarray | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    gram: np.ndarray | None = None,
) -> SparseCodes:
    """OMP codes of ``signals`` (rows) over ``dictionary`` (rows = unit-norm atoms).

    The Gram matrix is computed once; the correlations ``Y D^T`` are one matrix product per
    chunk of ``chunk_size`` signals, which bounds the memory to a few ``chunk_size x n_atoms``
    arrays.

    Parameters
    ----------
    signals : ndarray, shape (n_signals, n_features)
    dictionary : ndarray, shape (n_atoms, n_features)
    n_nonzero, tol :
        As in :func:`batch_omp_codes` (``tol`` may be one value per signal).
    chunk_size : int
        Signals per Batch-OMP call.
    gram : ndarray, optional
        Precomputed ``dictionary @ dictionary.T``.
    """
    signals = np.asarray(signals)
    dictionary = np.asarray(dictionary)
    if signals.ndim != 2 or dictionary.ndim != 2 or signals.shape[1] != dictionary.shape[1]:
        raise DimensionError(
            f"signals {signals.shape} and dictionary {dictionary.shape} must be 2-D with the "
            "same number of features (columns)"
        )
    dtype = _float_dtype(signals, dictionary)
    dictionary = np.asarray(dictionary, dtype=dtype)
    if gram is None:
        gram = dictionary @ dictionary.T
    n = signals.shape[0]
    chunk_size = max(int(chunk_size), 1)
    tol_all = None if tol is None else np.broadcast_to(np.asarray(tol, np.float64), (n,))
    parts = []
    for start in range(0, n, chunk_size):
        block = np.asarray(signals[start:start + chunk_size], dtype=dtype)
        dty = block @ dictionary.T
        yty = None
        tol_b = None
        if tol_all is not None:
            yty = np.vecdot(block, block)
            tol_b = tol_all[start:start + chunk_size]
        parts.append(batch_omp_codes(gram, dty, n_nonzero=n_nonzero, tol=tol_b, yty=yty))
    return SparseCodes.concatenate(parts, n_atoms=dictionary.shape[0], dtype=dtype)


__all__ = ["SparseCodes", "batch_omp", "batch_omp_codes", "sparse_code", "DEFAULT_CHUNK"]

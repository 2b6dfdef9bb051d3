r"""Quality-guided phase unwrapping along the maximum-quality spanning tree, compiled with numba.

Adding the pixel-grid edges in order of decreasing quality and joining two groups of pixels
whenever an edge connects them (Kruskal's algorithm) builds the maximum-quality spanning tree,
the tree a quality-guided flood fill follows (Herraez et al. 2002). Here each join is recorded
in a weighted union-find: every pixel keeps the integer number of cycles it differs from its
parent in the union-find forest, so joining two groups shifts one of them by a whole number of
cycles in O(1), without touching its pixels; path compression folds the offsets on the way
(Galler & Fischer 1964, Tarjan 1975, with offsets as in "weighted quick-union").
The edges are ordered by a counting sort of their quality on ``2**20`` levels (the spanning
tree of the quantised qualities differs from the exact one only between edges within a
millionth of the quality range of each other), so the whole unwrapping is linear in the number
of pixels. Each connected group of valid pixels is finally shifted so that its best pixel
keeps its wrapped value.

The result is that of :func:`ionscope.holography.unwrap.unwrap_quality_kernel`'s tree
integration; this module only makes it fast (a 4-megapixel noisy phase map in a fraction of
a second instead of seconds).

References
----------
M.A. Herraez, D.R. Burton, M.J. Lalor, M.A. Gdeisat, Appl. Opt. 41, 7437 (2002).
R.E. Tarjan, J. ACM 22, 215 (1975) (union-find with path compression).
"""

from __future__ import annotations

import numba
import numpy as np

#: Quality levels of the counting sort.
LEVELS = 1 << 20
#: Largest image (pixels): the union-find indices are int32.
MAX_PIXELS = 2**31 - 1


@numba.njit(nogil=True, cache=True)
def _wrap(x):  # pragma: no cover - compiled
    """``x`` wrapped into [-pi, pi) (as :func:`ionscope.holography.unwrap.wrap`)."""
    y = x - 2.0 * np.pi * np.floor((x + np.pi) * (1.0 / (2.0 * np.pi)))
    if y >= np.pi:
        y -= 2.0 * np.pi
    return y


@numba.njit(nogil=True, cache=True)
def reliability(psi, valid):  # pragma: no cover - compiled
    """Herraez reliability ``-D`` per pixel (D the root sum of squares of the wrapped second
    differences along the rows, columns and both diagonals); ``-2 pi`` where a neighbour is
    missing (border or invalid) - the worst case, never trusted more than an interior pixel."""
    ny, nx = psi.shape
    out = np.empty((ny, nx))
    worst = -2.0 * np.pi
    for i in range(ny):
        for j in range(nx):
            if i == 0 or j == 0 or i == ny - 1 or j == nx - 1:
                out[i, j] = worst
                continue
            if not (valid[i - 1, j - 1] and valid[i - 1, j] and valid[i - 1, j + 1] and valid[i, j - 1]
                    and valid[i, j + 1] and valid[i + 1, j - 1] and valid[i + 1, j] and valid[i + 1, j + 1]):
                out[i, j] = worst
                continue
            c = psi[i, j]
            h = _wrap(psi[i, j - 1] - c) - _wrap(c - psi[i, j + 1])
            v = _wrap(psi[i - 1, j] - c) - _wrap(c - psi[i + 1, j])
            d1 = _wrap(psi[i - 1, j - 1] - c) - _wrap(c - psi[i + 1, j + 1])
            d2 = _wrap(psi[i - 1, j + 1] - c) - _wrap(c - psi[i + 1, j - 1])
            out[i, j] = -np.sqrt(h * h + v * v + d1 * d1 + d2 * d2)
    return out


@numba.njit(nogil=True, cache=True)
def _find(node, x):  # pragma: no cover - compiled
    """Root of ``x`` and ``k_x - k_root``, compressing the path (offsets folded in).
    ``node[2 y]`` is the parent of ``y``, ``node[2 y + 1]`` its cycles relative to the parent
    (interleaved: one cache line per step up the tree)."""
    root = x
    total = 0
    while node[2 * root] != root:
        total += node[2 * root + 1]
        root = node[2 * root]
    # second pass: point every node on the path at the root with its full offset
    k = total
    y = x
    while node[2 * y] != root and node[2 * y] != y:
        nxt = node[2 * y]
        step = node[2 * y + 1]
        node[2 * y] = root
        node[2 * y + 1] = k
        k -= step
        y = nxt
    return root, total


@numba.njit(nogil=True, cache=True)
def unwrap_tree(psi, valid, quality):  # pragma: no cover - compiled
    """Cycles ``k`` (int64, 2-D) with ``psi + 2 pi k`` unwrapped along the maximum-quality
    spanning tree of the 4-connected ``valid`` pixels (``quality`` larger is better); 0 on
    invalid pixels."""
    ny, nx = psi.shape
    n = ny * nx
    two_pi = 2.0 * np.pi
    # edges: e < n horizontal (x, x+1), e >= n vertical (x, x+nx); mean quality, valid ends
    n_edges = 0
    qmin = np.inf
    qmax = -np.inf
    for i in range(ny):
        for j in range(nx):
            if not valid[i, j]:
                continue
            if j + 1 < nx and valid[i, j + 1]:
                q = 0.5 * (quality[i, j] + quality[i, j + 1])
                n_edges += 1
                qmin = min(qmin, q)
                qmax = max(qmax, q)
            if i + 1 < ny and valid[i + 1, j]:
                q = 0.5 * (quality[i, j] + quality[i + 1, j])
                n_edges += 1
                qmin = min(qmin, q)
                qmax = max(qmax, q)
    k = np.zeros((ny, nx), dtype=np.int64)
    if n_edges == 0:
        return k
    levels = min(LEVELS, n_edges)
    span = qmax - qmin
    scale = (levels - 1) / span if span > 0 else 0.0
    # counting sort by decreasing quality: bucket = (qmax - q) * scale
    counts = np.zeros(levels + 1, dtype=np.int64)
    for i in range(ny):
        for j in range(nx):
            if not valid[i, j]:
                continue
            if j + 1 < nx and valid[i, j + 1]:
                counts[int((qmax - 0.5 * (quality[i, j] + quality[i, j + 1])) * scale) + 1] += 1
            if i + 1 < ny and valid[i + 1, j]:
                counts[int((qmax - 0.5 * (quality[i, j] + quality[i + 1, j])) * scale) + 1] += 1
    for b in range(levels):
        counts[b + 1] += counts[b]
    order = np.empty(n_edges, dtype=np.int64)
    for i in range(ny):
        for j in range(nx):
            if not valid[i, j]:
                continue
            x = i * nx + j
            if j + 1 < nx and valid[i, j + 1]:
                b = int((qmax - 0.5 * (quality[i, j] + quality[i, j + 1])) * scale)
                order[counts[b]] = x
                counts[b] += 1
            if i + 1 < ny and valid[i + 1, j]:
                b = int((qmax - 0.5 * (quality[i, j] + quality[i + 1, j])) * scale)
                order[counts[b]] = n + x
                counts[b] += 1
    # weighted union-find over the pixels
    # parent and cycles relative to it, interleaved, int32 (images below 2**31 pixels,
    # MAX_PIXELS): the randomly accessed memory is what the time goes into
    node = np.zeros(2 * n, dtype=np.int32)
    for x in range(n):
        node[2 * x] = x
    size = np.ones(n, dtype=np.int32)
    flat = psi.ravel()
    for e in range(n_edges):
        code = order[e]
        if code < n:
            a = code
            b = code + 1
        else:
            a = code - n
            b = a + nx
        ra, ka = _find(node, a)
        rb, kb = _find(node, b)
        if ra == rb:
            continue
        d = np.int64(np.rint((flat[a] - flat[b]) / two_pi))  # k_b - k_a along the edge
        shift = d - kb + ka  # k_rb - k_ra
        if size[ra] >= size[rb]:
            node[2 * rb] = ra
            node[2 * rb + 1] = shift
            size[ra] += size[rb]
        else:
            node[2 * ra] = rb
            node[2 * ra + 1] = -shift
            size[rb] += size[ra]
    # cycles relative to each group's root; then the group's best pixel keeps its wrapped value
    best = np.full(n, -1, dtype=np.int64)
    cyc = np.zeros(n, dtype=np.int64)
    root_of = np.empty(n, dtype=np.int64)
    qflat = quality.ravel()
    vflat = valid.ravel()
    for x in range(n):
        if not vflat[x]:
            continue
        r, kx = _find(node, x)
        root_of[x] = r
        cyc[x] = kx
        if best[r] < 0 or qflat[x] > qflat[best[r]]:
            best[r] = x
    kflat = k.ravel()
    for x in range(n):
        if vflat[x]:
            kflat[x] = cyc[x] - cyc[best[root_of[x]]]
    return k


__all__ = ["unwrap_tree", "reliability", "LEVELS", "MAX_PIXELS"]

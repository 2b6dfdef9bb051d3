r"""Multimodal registration in physical units: one technique's map onto another's grid.

A KPFM map (potential, ~5-20 nm pixels) and a TOF-SIMS map (ion counts, ~100 nm pixels) of the
same region have different pixel sizes, fields of view and contrasts - a particle can be bright
in one and dark in the other. :func:`register_rigid` finds the rigid (optionally affine)
transform between them by maximising their **Mattes mutual information** (Mattes et al. 2003)
with SimpleITK's registration framework (Lowekamp et al. 2013), in physical coordinates (nm),
multi-resolution, started from a given rotation and shift. :func:`resample_onto` then puts the
moving image (or a stack of its frames) onto the fixed grid, averaging over each fixed pixel's
footprint, NaN where the moving field does not cover it.

Coordinates and sign conventions
--------------------------------
Positions are ``r = (y, x)`` in nm, read from each DataArray's ``y`` and ``x`` coordinates
(pixel centres, any length unit, each image its own origin and pixel size); y points down (row
0 at the top, as Gwyddion displays images), x to the right.

The transform maps a point of the **moving** image's coordinates to the **fixed** image's:

.. math::

    r_f = H(r_m) = R(\varphi)\,(r_m - c_m) + c_m + s, \qquad
    R(\varphi) = \begin{pmatrix}\cos\varphi & -\sin\varphi\\ \sin\varphi & \cos\varphi\end{pmatrix}
    \ \text{acting on}\ (y, x),

with ``c_m`` the centre of the moving field (in its own coordinates), ``s = (shift_y_nm,
shift_x_nm)`` and ``phi = rotation_deg``. The registered moving image is
``registered(r) = moving(H^{-1}(r))``; without rotation that is ``moving(r - s)``: **s is
ionscope's one shift** (:mod:`ionscope.register`: the translation to apply to the moving image
to register it onto the fixed one). A **positive rotation is counter-clockwise as displayed**
(y down): the moving content is turned counter-clockwise to lie on the fixed one (as
``skimage.transform.rotate``). :attr:`RigidRegistration.matrix` is ``H`` as a 3 x 3 matrix on
column vectors ``(y, x, 1)`` in nm.

References
----------
D. Mattes, D.R. Haynor, H. Vesselle, T.K. Lewellen, W. Eubank, "PET-CT image registration in the
chest using free-form deformations", IEEE Trans. Med. Imaging 22, 120 (2003).
B.C. Lowekamp, D.T. Chen, L. Ibanez, D. Blezek, "The design of SimpleITK", Front. Neuroinform.
7, 45 (2013).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.ndimage as ndi
import xarray as xr

from ionscope.data import axis_calibration, provenance, units_of, with_provenance
from ionscope.errors import ConfigError, ConvergenceError, DimensionError, InputError, NonFiniteError
from ionscope.units import require_length_to_nm
from ionscope.validation import Interval, Options, validate_params

__all__ = ["RigidRegistration", "register_rigid", "resample_onto", "rigid_matrix"]

#: Fewest fixed pixels the two fields must share (with finite values in both) to register.
MIN_OVERLAP_PX = 16
_SUBSAMPLE = 8.0
_POLISH_BINS = 2.0


# --------------------------------------------------------------------------- grids


@dataclass(frozen=True)
class _Grid:
    """An image's values (..., y, x) and its pixel-centre coordinates in nm (steps signed)."""

    values: np.ndarray
    y0: float
    x0: float
    dy: float
    dx: float

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape[-2], self.values.shape[-1]

    @property
    def centre(self) -> np.ndarray:
        ny, nx = self.shape
        return np.array([self.y0 + 0.5 * (ny - 1) * self.dy, self.x0 + 0.5 * (nx - 1) * self.dx])

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        ny, nx = self.shape
        return self.y0 + self.dy * np.arange(ny), self.x0 + self.dx * np.arange(nx)

    def index(self, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (row, column) of positions in nm."""
        return (y - self.y0) / self.dy, (x - self.x0) / self.dx


def _grid(da, what: str, *, stack: bool = False, values: bool = True) -> _Grid:
    """The (y, x) [or (time, y, x) with ``stack``] grid of a DataArray, refused without lengths."""
    if not isinstance(da, xr.DataArray):
        raise InputError(f"{what} must be an xarray.DataArray with dims (y, x), got {type(da).__name__}")
    allowed = [("y", "x"), ("time", "y", "x")] if stack else [("y", "x")]
    if set(da.dims) not in [set(a) for a in allowed]:
        raise DimensionError(f"{what} needs dims {' or '.join(map(str, allowed))}, got {tuple(da.dims)}")
    if da.sizes["y"] < 2 or da.sizes["x"] < 2:
        raise DimensionError(f"{what} has {da.sizes['y']} x {da.sizes['x']} pixels; an image needs at least 2 x 2")
    order = ("time", "y", "x") if "time" in da.dims else ("y", "x")
    da = da.transpose(*order)
    cal = {}
    for dim in ("y", "x"):
        if dim not in da.coords:
            raise InputError(f"{what} has no {dim!r} coordinate; give it pixel-centre positions in nm "
                             f"(e.g. da.assign_coords({dim}=step_nm * np.arange(n)) with attrs units='nm')")
        offset, step, unit = axis_calibration(da, dim)
        factor = require_length_to_nm(unit, f"the {dim} axis of {what}")
        cal[dim] = (offset * factor, step * factor)
    if values:
        v = np.asarray(da.values)
        if not np.issubdtype(v.dtype, np.number) or np.issubdtype(v.dtype, np.complexfloating):
            raise InputError(f"{what} must hold real numbers, got dtype {v.dtype}")
        v = v.astype(np.float64, copy=False)
    else:
        v = np.empty((da.sizes["y"], da.sizes["x"]), dtype=np.float32)
    return _Grid(v, cal["y"][0], cal["x"][0], cal["y"][1], cal["x"][1])


def _image_values(g: _Grid, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Values with NaN filled (by the median) and the mask of finite pixels; refuses inf, too few
    finite pixels and constant images."""
    v = g.values
    if np.isinf(v).any():
        raise NonFiniteError(f"{what} holds {int(np.isinf(v).sum())} infinite value(s); NaN marks missing "
                             "pixels (they are left out of the metric) - replace the infinities by NaN")
    ok = np.isfinite(v)
    if ok.sum() < MIN_OVERLAP_PX:
        raise NonFiniteError(f"{what} has {int(ok.sum())} finite pixel(s) of {v.size}; it cannot be registered")
    finite = v[ok]
    if float(finite.max() - finite.min()) <= 1e-12 * max(1.0, float(np.abs(finite).max())):
        raise InputError(f"{what} is constant ({finite[0]:g}); a constant image carries no information "
                         "to register by")
    return np.where(ok, v, np.median(finite)), ok


# --------------------------------------------------------------------------- transforms


def rigid_matrix(rotation_deg: float, shift_nm: Sequence[float], centre_nm: Sequence[float] = (0.0, 0.0)
                 ) -> np.ndarray:
    """The 3 x 3 moving -> fixed matrix on ``(y, x, 1)`` (nm) of a rotation about ``centre_nm``
    (moving coordinates) followed by a shift (module docstring: ``r_f = R(phi)(r_m - c) + c + s``).

    Parameters
    ----------
    rotation_deg : float
        Rotation (degrees, counter-clockwise as displayed with y down).
    shift_nm : (float, float)
        Shift ``(y, x)`` in nm.
    centre_nm : (float, float)
        Rotation centre ``(y, x)`` in nm, in the moving image's coordinates.

    Examples
    --------
    >>> m = rigid_matrix(90, (0, 0))
    >>> np.round(m @ [0, 1, 1], 12).tolist()         # x = 1 (right) turns to y = -1 (up)
    [-1.0, 0.0, 1.0]
    """
    phi = math.radians(float(rotation_deg))
    c, s = math.cos(phi), math.sin(phi)
    R = np.array([[c, -s], [s, c]])
    centre = np.asarray(centre_nm, dtype=np.float64)
    out = np.eye(3)
    out[:2, :2] = R
    out[:2, 2] = centre - R @ centre + np.asarray(shift_nm, dtype=np.float64)
    return out


def _rotation_of(linear: np.ndarray) -> float:
    """The rotation (degrees) closest to a 2 x 2 linear map on (y, x)."""
    return math.degrees(math.atan2(linear[1, 0] - linear[0, 1], linear[0, 0] + linear[1, 1]))


_SWAP = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # (y, x, 1) <-> (x, y, 1)


def _to_sitk(G: np.ndarray, centre_yx: np.ndarray, affine: bool):
    """A SimpleITK transform equal to the (y, x) matrix ``G`` (fixed -> moving), centred at
    ``centre_yx`` (the registration's fixed coordinates)."""
    import SimpleITK as sitk

    Gs = _SWAP @ G @ _SWAP
    A, b = Gs[:2, :2], Gs[:2, 2]
    c = centre_yx[::-1].astype(np.float64)
    t = b + A @ c - c
    if affine:
        tx = sitk.AffineTransform(2)
        tx.SetMatrix(A.ravel().tolist())
    else:
        tx = sitk.Euler2DTransform()
        tx.SetAngle(math.atan2(A[1, 0], A[0, 0]))
    tx.SetCenter(c.tolist())
    tx.SetTranslation(t.tolist())
    return tx


def _from_sitk(tx) -> np.ndarray:
    """The (y, x) 3 x 3 matrix of a SimpleITK matrix-offset transform."""
    A = np.asarray(tx.GetMatrix(), dtype=np.float64).reshape(2, 2)
    c = np.asarray(tx.GetCenter(), dtype=np.float64)
    t = np.asarray(tx.GetTranslation(), dtype=np.float64)
    Gs = np.eye(3)
    Gs[:2, :2] = A
    Gs[:2, 2] = c + t - A @ c
    return _SWAP @ Gs @ _SWAP


def _apply(H: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return H[0, 0] * y + H[0, 1] * x + H[0, 2], H[1, 0] * y + H[1, 1] * x + H[1, 2]


def _covered(fixed: _Grid, moving: _Grid, G: np.ndarray, margin_nm: float = 0.0) -> np.ndarray:
    """Fixed pixels (bool (y, x)) whose centre ``G`` (fixed -> moving coordinates) maps inside the
    moving field (up to its outer pixel edges), at least ``margin_nm`` from its border."""
    yf, xf = fixed.coords()
    ym, xm = _apply(G, yf[:, None], xf[None, :])
    iy, ix = moving.index(ym, xm)
    ny, nx = moving.shape
    ly, lx, eps = -0.5 + margin_nm / abs(moving.dy), -0.5 + margin_nm / abs(moving.dx), 1e-9
    return (iy >= ly - eps) & (iy <= ny - 1 - ly + eps) & (ix >= lx - eps) & (ix <= nx - 1 - lx + eps)


# --------------------------------------------------------------------------- registration


@dataclass(frozen=True)
class RigidRegistration:
    """The transform registering a moving image onto a fixed one (module docstring).

    Attributes
    ----------
    rotation_deg : float
        Rotation (degrees, counter-clockwise as displayed, y down) of the moving content; for an
        affine result, the rotation closest to its linear part.
    shift_y_nm, shift_x_nm : float
        Shift (nm) after the rotation about the moving field's centre: ionscope's shift
        (``registered(r) = moving(r - shift)`` without rotation).
    matrix : numpy.ndarray (3, 3)
        ``H``: moving -> fixed coordinates on ``(y, x, 1)`` in nm.
    centre_y_nm, centre_x_nm : float
        The rotation centre ``c_m``: the moving field's centre in its own coordinates (nm).
    metric : float
        Final Mattes metric value: minus the mutual information (nats) at the finest level; lower
        is better, about 0 for unrelated images.
    iterations : int
        Optimizer iterations over all levels.
    converged : bool
        Whether the optimizer stopped at the finest level because its step became small
        (rather than at its iteration limit). It says nothing about a wrong local optimum: judge
        that by ``metric`` (compare it with a registration you trust).
    stop_reason : str
        SimpleITK's stop-condition description at the finest level.
    overlap_fraction : float
        Fraction of the fixed pixels the moving field covers under ``matrix``.
    affine : numpy.ndarray (2, 2) or None
        The linear part of ``matrix`` on (y, x) when the registration was affine.
    """

    rotation_deg: float
    shift_y_nm: float
    shift_x_nm: float
    matrix: np.ndarray = field(repr=False)
    centre_y_nm: float
    centre_x_nm: float
    metric: float
    iterations: int
    converged: bool
    stop_reason: str
    overlap_fraction: float
    affine: np.ndarray | None = field(default=None, repr=False)

    def summary(self) -> dict:
        """Plain numbers for a result's summary (``rotation_deg``, ``shift_y_nm``, ``shift_x_nm``,
        ``metric``, ...)."""
        out = {k: getattr(self, k) for k in ("rotation_deg", "shift_y_nm", "shift_x_nm", "metric", "iterations",
                                             "converged", "stop_reason", "overlap_fraction")}
        out["matrix"] = self.matrix.tolist()
        if self.affine is not None:
            out["affine"] = self.affine.tolist()
        return out


def _box_kernel(width_px: float) -> np.ndarray:
    """1-D weights of a box ``width_px`` samples wide (fractional ends), summing to 1."""
    m = int(math.ceil(0.5 * width_px - 0.5 + 1e-9))
    k = np.arange(-m, m + 1, dtype=np.float64)
    w = np.clip(np.minimum(k + 0.5, 0.5 * width_px) - np.maximum(k - 0.5, -0.5 * width_px), 0.0, None)
    return w / w.sum()


def _fine_for_metric(img: np.ndarray, ok: np.ndarray, g: _Grid, footprint: tuple[float, float], blur_nm: float
                     ) -> tuple[np.ndarray, np.ndarray, _Grid]:
    """The finer image averaged over the coarse pixels' ``footprint`` (nm, y and x; as
    :func:`resample_onto` does), blurred by a Gaussian of ``blur_nm``, and subsampled to about
    1/8 of the footprint; its mask loses the pixels that the filters mix with NaN pixels."""
    bad = (~ok).astype(np.float32)
    for axis, (width, step) in enumerate(zip(footprint, (abs(g.dy), abs(g.dx)))):
        if width > step:
            kern = _box_kernel(width / step)
            img = ndi.correlate1d(img, kern, axis=axis, mode="nearest")
            bad = ndi.correlate1d(bad, kern.astype(np.float32), axis=axis, mode="constant")
    if blur_nm > 0:
        sig = (blur_nm / abs(g.dy), blur_nm / abs(g.dx))
        img = ndi.gaussian_filter(img, sig, mode="nearest", truncate=3.0)
        bad = ndi.gaussian_filter(bad, sig, mode="constant", truncate=3.0)
    ok = bad < 1e-3
    ky = max(1, int(footprint[0] / _SUBSAMPLE / abs(g.dy)))
    kx = max(1, int(footprint[1] / _SUBSAMPLE / abs(g.dx)))
    return img[::ky, ::kx], ok[::ky, ::kx], _Grid(g.values[..., ::ky, ::kx], g.y0, g.x0, g.dy * ky, g.dx * kx)


def _sitk_image(values: np.ndarray, g: _Grid, dtype=np.float32):
    """A SimpleITK image (x, y physical axes) of values on ``g``; negative steps are flipped."""
    import SimpleITK as sitk

    v = values
    y0, x0 = g.y0, g.x0
    ny, nx = values.shape
    if g.dy < 0:
        v, y0 = v[::-1], g.y0 + (ny - 1) * g.dy
    if g.dx < 0:
        v, x0 = v[:, ::-1], g.x0 + (nx - 1) * g.dx
    img = sitk.GetImageFromArray(np.ascontiguousarray(v, dtype=dtype))
    img.SetSpacing((abs(g.dx), abs(g.dy)))
    img.SetOrigin((x0, y0))
    return img


def _check_pair(a, what: str) -> tuple[float, float]:
    try:
        y, x = (float(v) for v in a)
    except (TypeError, ValueError):
        raise ConfigError(f"register_rigid: parameter {what!r} must be two numbers (y, x) in nm, got {a!r}") from None
    if not (math.isfinite(y) and math.isfinite(x)):
        raise ConfigError(f"register_rigid: parameter {what!r} must be finite, got {a!r}")
    return y, x


def _mattes_method(fixed_mask, moving_mask, nbins, levels, sigmas):
    """A SimpleITK registration method with ionscope's metric: Mattes mutual information over every
    pixel of the fixed mask (no sampling), linear interpolation, the masks, and the resolution
    levels (shrink factors, smoothing sigmas in nm)."""
    import SimpleITK as sitk

    R = sitk.ImageRegistrationMethod()
    R.SetMetricAsMattesMutualInformation(numberOfHistogramBins=nbins)
    R.SetMetricSamplingStrategy(R.NONE)
    R.SetInterpolator(sitk.sitkLinear)
    R.SetMetricFixedMask(fixed_mask)
    if moving_mask is not None:
        R.SetMetricMovingMask(moving_mask)
    R.SetShrinkFactorsPerLevel(list(levels))
    R.SetSmoothingSigmasPerLevel(list(sigmas))
    R.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return R


def _run_sitk(fixed_img, moving_img, fixed_mask, moving_mask, initial, nbins, levels, sigmas, step, min_step,
              iterations):
    """One SimpleITK registration (Mattes MI, regular-step gradient descent); returns the (y, x)
    fixed -> moving matrix, the final metric, the iterations and the stop condition."""
    import SimpleITK as sitk

    R = _mattes_method(fixed_mask, moving_mask, nbins, levels, sigmas)
    R.SetOptimizerAsRegularStepGradientDescent(learningRate=step, minStep=min_step, numberOfIterations=iterations,
                                               relaxationFactor=0.5, gradientMagnitudeTolerance=1e-12)
    R.SetOptimizerScalesFromPhysicalShift()
    R.SetInitialTransform(initial, inPlace=False)
    count = [0]
    R.AddCommand(sitk.sitkIterationEvent, lambda: count.__setitem__(0, count[0] + 1))
    try:
        out = R.Execute(fixed_img, moving_img)
    except RuntimeError as exc:
        raise ConvergenceError(f"the registration failed ({str(exc).strip().splitlines()[-1]}); the optimizer "
                               "probably moved the fields apart - start closer (init_shift_nm, "
                               "init_rotation_deg)") from None
    if hasattr(out, "GetNumberOfTransforms") and out.GetNumberOfTransforms() >= 1:
        out = out.GetNthTransform(out.GetNumberOfTransforms() - 1)
    return _from_sitk(out.Downcast()), float(R.GetMetricValue()), count[0], R.GetOptimizerStopConditionDescription()


def _search_sitk(fixed_img, moving_img, fixed_mask, moving_mask, initial, nbins, sigma, n_rot, rot_step, n_shift,
                 shift_step, keep):
    """Exhaustive grid search of a rigid start (Mattes MI on images smoothed by ``sigma`` nm):
    ``2 n + 1`` rotations ``rot_step`` (rad) apart and shifts ``shift_step`` (nm) apart about
    ``initial`` (a Euler2D transform). Returns the ``keep`` best parameter vectors."""
    import SimpleITK as sitk

    R = _mattes_method(fixed_mask, moving_mask, nbins, [1], [sigma])
    R.SetOptimizerAsExhaustive([n_rot, n_shift, n_shift], stepLength=1.0)
    R.SetOptimizerScales([rot_step, shift_step, shift_step])
    R.SetInitialTransform(initial, inPlace=False)
    seen = []
    R.AddCommand(sitk.sitkIterationEvent, lambda: seen.append((R.GetMetricValue(), R.GetMetricNumberOfValidPoints(),
                                                                R.GetOptimizerPosition())))
    try:
        R.Execute(fixed_img, moving_img)
    except RuntimeError:
        return []
    if not seen:
        return []
    # mutual information grows as the overlap shrinks (fewer samples, a sparser histogram):
    # weigh it by the overlap
    most = max(n for _, n, _ in seen)
    seen.sort(key=lambda v: v[0] * v[1] / most)
    return [np.asarray(p) for _, _, p in seen[:keep]]


@validate_params({
    "init_rotation_deg": [Interval(float, -360, 360, unit="degrees")],
    "affine": [bool],
    "metric": [Options({"mattes"})],
    "bins": [Interval(int, 4, 256), None],
    "iterations": [Interval(int, 1, 100000)],
    "min_step_nm": [Interval(float, 0, None, closed="neither", unit="nm")],
    "max_step_nm": [Interval(float, 0, None, closed="neither", unit="nm"), None],
    "smoothing_nm": [tuple, list, None],
    "margin_nm": [Interval(float, 0, None, unit="nm"), None],
    "blur_nm": [Interval(float, 0, None, unit="nm")],
    "search_rotation_deg": [Interval(float, 0, 180, unit="degrees")],
    "search_shift_nm": [Interval(float, 0, None, unit="nm")],
})
def register_rigid(fixed: xr.DataArray, moving: xr.DataArray, *, init_rotation_deg: float = 0.0,
                   init_shift_nm: Sequence[float] | None = None, affine: bool = False, metric: str = "mattes",
                   levels: Sequence[int] = (4, 2, 1), smoothing_nm: Sequence[float] | None = None,
                   bins: int | None = None, iterations: int = 200, min_step_nm: float = 0.01,
                   max_step_nm: float | None = None, margin_nm: float | None = None,
                   blur_nm: float = 0.0, search_rotation_deg: float = 12.0, search_shift_nm: float = 1200.0) -> RigidRegistration:
    """Register ``moving`` onto ``fixed`` by Mattes mutual information, rigid or affine, in nm.

    The metric is evaluated on the coarser image's pixels: the finer image is averaged over a
    coarse pixel's footprint (as :func:`resample_onto` does; optionally blurred by ``blur_nm``)
    and linearly interpolated there. When ``fixed`` is the finer one the roles are swapped internally and the transform
    inverted, so the result always maps ``moving`` onto ``fixed``. NaN pixels of either image are
    masked out of the metric (SimpleITK metric masks). The optimizer is a regular-step gradient
    descent with parameter scales from physical shifts, over ``levels`` (shrink factors) with
    Gaussian smoothing in nm, started from ``init_rotation_deg`` and ``init_shift_nm`` and from
    the best points of a coarse grid search around them, then polished at full resolution with
    twice the histogram bins.

    Parameters
    ----------
    fixed, moving : xarray.DataArray (y, x)
        The two images, each with ``y`` and ``x`` coordinates in a length unit (pixel centres,
        evenly spaced; its own origin, pixel size and field of view). NaN marks missing pixels.
    init_rotation_deg : float
        Starting rotation (degrees, counter-clockwise as displayed, about the moving field's
        centre).
    init_shift_nm : (float, float), optional
        Starting shift ``(y, x)`` in nm (module docstring). The fields must overlap under the
        starting transform. Default: the shift that puts the moving field's centre on the fixed
        field's centre (the guess when nothing else is known, e.g. a KPFM field somewhere inside a
        larger TOF-SIMS field).
    affine : bool
        Optimise a full affine transform (6 parameters) instead of a rotation and a shift.
    metric : {"mattes"}
        Mattes mutual information (the only metric: the images are of different modalities).
    levels : sequence of int
        Shrink factor of each resolution level, coarse to fine (the last should be 1).
    smoothing_nm : sequence of float, optional
        Gaussian sigma (nm) of each level; default ``(shrink - 1)`` coarse pixels.
    bins : int, optional
        Histogram bins of the metric; default from the number of coarse pixels (``sqrt(n) / 2``,
        12-50).
    iterations : int
        Iteration limit per level.
    min_step_nm : float
        The optimizer stops (converged) when its step falls below this (nm of physical shift).
    max_step_nm : float, optional
        The optimizer's first step (nm); default half a coarse pixel.
    margin_nm : float, optional
        The full-resolution polish uses the coarse pixels at least this far inside the moving
        field (default one coarse pixel), so that no sample crosses its border.
    blur_nm : float
        Gaussian sigma (nm) of the coarser instrument's resolution beyond its pixel (e.g. the
        ion beam), applied to the finer image before the metric.
    search_rotation_deg, search_shift_nm : float
        Half-widths of a grid search of the start (2-degree steps; shift steps of
        ``max(coarse pixel, search_shift_nm / 6)``) on images smoothed by half a shift step; the
        three best grid points (mutual information weighted by the overlap) and the given start
        are each refined, and the best result (same weighting) is kept. 0 and 0: no search.

    Returns
    -------
    RigidRegistration
        The transform (rotation, shift, 3 x 3 matrix), the metric, iterations and convergence.

    Raises
    ------
    InputError
        Grids without length units, non-uniform axes, images with infinities, too few finite
        pixels or constant values, or fields that do not overlap under the starting transform.
    ConfigError
        Bad parameters.
    ConvergenceError
        The optimizer moved the fields apart (no overlap left).

    Examples
    --------
    >>> y, x = np.mgrid[:64, :64] * 20.0
    >>> blob = lambda y, x, cy, cx: np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 2e4)
    >>> scene = lambda y, x: blob(y, x, 600, 700) + 0.6 * blob(y, x, 300, 250) + 0.3 * blob(y, x, 900, 400)
    >>> from ionscope.data import signal
    >>> fixed = signal(scene(y, x), ("y", "x"), name="a", units="1", coords={"y": 20.0, "x": 20.0})
    >>> moving = signal(-scene(y + 30, x - 50), ("y", "x"), name="b", units="1", coords={"y": 20.0, "x": 20.0})
    >>> r = register_rigid(fixed, moving, levels=(1,), search_rotation_deg=0, search_shift_nm=0)
    >>> round(r.shift_y_nm), round(r.shift_x_nm), abs(r.rotation_deg) < 0.2   # moving(r) = -fixed(r + (30, -50))
    (30, -50, True)
    """
    levels = tuple(int(v) for v in levels) if isinstance(levels, (tuple, list)) else levels
    if not isinstance(levels, tuple) or not levels or any(v < 1 for v in levels):
        raise ConfigError(f"register_rigid: parameter 'levels' must be shrink factors >= 1, coarse to fine, "
                          f"got {levels!r}")
    fg = _grid(fixed, "the fixed image")
    mg = _grid(moving, "the moving image")
    s0 = (tuple(float(v) for v in fg.centre - mg.centre) if init_shift_nm is None
          else _check_pair(init_shift_nm, "init_shift_nm"))
    fv, fok = _image_values(fg, "the fixed image")
    mv, mok = _image_values(mg, "the moving image")

    cm = mg.centre
    H0 = rigid_matrix(init_rotation_deg, s0, cm)
    cov = _covered(fg, mg, np.linalg.inv(H0)) & fok
    if cov.sum() < MIN_OVERLAP_PX:
        raise InputError(
            f"the moving field overlaps the fixed one by {int(cov.sum())} pixel(s) under the starting transform "
            f"(rotation {init_rotation_deg:g} deg, shift {s0[0]:g}, {s0[1]:g} nm); at least {MIN_OVERLAP_PX} are "
            "needed - check init_shift_nm, init_rotation_deg and the coordinates' origins and units")

    # the metric runs on the coarser grid; the finer image is smoothed to its pixels
    area = lambda g: abs(g.dy * g.dx)  # noqa: E731
    swapped = area(fg) < area(mg)
    cg, cv, cok = (mg, mv, mok) if swapped else (fg, fv, fok)
    ng, nv, nok = (fg, fv, fok) if swapped else (mg, mv, mok)
    coarse = math.sqrt(area(cg))
    nv, nok, ng = _fine_for_metric(nv, nok, ng, (abs(cg.dy), abs(cg.dx)), float(blur_nm))
    # G: registration-fixed (coarse) -> registration-moving (fine) coordinates
    G0 = H0 if swapped else np.linalg.inv(H0)
    centre = cm if swapped else H0[:2, :2] @ cm + H0[:2, 2]

    if smoothing_nm is None:
        smoothing_nm = tuple((v - 1) * coarse for v in levels)
    smoothing_nm = tuple(float(v) for v in smoothing_nm)
    if len(smoothing_nm) != len(levels) or any(not (v >= 0 and math.isfinite(v)) for v in smoothing_nm):
        raise ConfigError(f"register_rigid: parameter 'smoothing_nm' must be one sigma >= 0 (nm) per level "
                          f"({len(levels)}), got {smoothing_nm!r}")

    n_coarse = int(cok.sum())
    nbins = int(bins) if bins is not None else int(np.clip(round(math.sqrt(n_coarse) / 2), 12, 50))
    fixed_img, moving_img = _sitk_image(cv, cg), _sitk_image(nv, ng)
    moving_mask = None if nok.all() else _sitk_image(nok.astype(np.uint8), ng, np.uint8)
    step = float(max_step_nm) if max_step_nm is not None else 0.5 * coarse

    def run(G_start, mask, lv, sig, first_step, nb):
        return _run_sitk(fixed_img, moving_img, _sitk_image(mask.astype(np.uint8), cg, np.uint8), moving_mask,
                         _to_sitk(G_start, centre, affine), nb, lv, sig, first_step, float(min_step_nm),
                         int(iterations))

    mask_img = _sitk_image(cok.astype(np.uint8), cg, np.uint8)
    total = 0
    starts = [G0]
    if search_rotation_deg > 0 or search_shift_nm > 0:
        shift_step = max(coarse, search_shift_nm / 6.0)
        n_shift = int(math.ceil(search_shift_nm / shift_step - 1e-9))
        n_rot = int(math.ceil(search_rotation_deg / 2.0 - 1e-9))
        tx0 = _to_sitk(G0, centre, False)
        for p in _search_sitk(fixed_img, moving_img, mask_img, moving_mask, tx0, nbins, 0.5 * shift_step, n_rot,
                              math.radians(2.0), n_shift, shift_step, 3):
            tx0.SetParameters(tuple(float(v) for v in p))
            starts.append(_from_sitk(tx0))
    best, candidates = None, []
    for G_start in starts:
        try:
            G, value, count, reason = run(G_start, cok, levels, smoothing_nm, step, nbins)
        except ConvergenceError:
            if not candidates and G_start is starts[-1]:
                raise
            continue
        # polish at full resolution over the pixels well inside the moving field: a sample set
        # that does not change as the transform moves (samples crossing the field's border make
        # the metric jump and stall the descent)
        margin = float(margin_nm) if margin_nm is not None else coarse
        inner = cok & _covered(cg, ng, G, margin)
        if inner.sum() >= MIN_OVERLAP_PX:
            G, value, more, reason = run(G, inner, (1,), (0.0,), 0.1 * coarse, int(_POLISH_BINS * nbins))
            count += more
        total += count
        candidates.append((G, value, reason, int((cok & _covered(cg, ng, G)).sum())))
    if candidates:
        most = max(c[3] for c in candidates)
        best = min(candidates, key=lambda c: c[1] * c[3] / most)[:3]
    if best is None:
        raise ConvergenceError("the registration failed from every start; start closer (init_shift_nm, "
                               "init_rotation_deg)")
    G, value, reason = best
    count = total
    H = G if swapped else np.linalg.inv(G)
    H[2] = (0.0, 0.0, 1.0)
    covered = _covered(fg, mg, np.linalg.inv(H)) & fok
    if covered.sum() < MIN_OVERLAP_PX:
        raise ConvergenceError(f"the registration ended with the fields {int(covered.sum())} pixel(s) apart of "
                               f"overlap; start closer (init_shift_nm, init_rotation_deg)")
    L = H[:2, :2]
    s = H[:2, 2] + L @ cm - cm
    converged = "Step too small" in reason or "Gradient magnitude tolerance" in reason
    return RigidRegistration(
        rotation_deg=_rotation_of(L), shift_y_nm=float(s[0]), shift_x_nm=float(s[1]), matrix=H,
        centre_y_nm=float(cm[0]), centre_x_nm=float(cm[1]), metric=float(value),
        iterations=int(count), converged=bool(converged), stop_reason=reason,
        overlap_fraction=float(_covered(fg, mg, np.linalg.inv(H)).mean()), affine=L.copy() if affine else None)


# --------------------------------------------------------------------------- resampling


def _matrix_of(transform) -> np.ndarray:
    H = transform.matrix if isinstance(transform, RigidRegistration) else transform
    try:
        H = np.asarray(H, dtype=np.float64)
    except (TypeError, ValueError):
        H = np.full((0,), np.nan)
    if H.shape == (2, 3):
        H = np.vstack([H, [0.0, 0.0, 1.0]])
    if H.shape != (3, 3) or not np.isfinite(H).all() or not np.allclose(H[2], (0, 0, 1)) \
            or abs(np.linalg.det(H[:2, :2])) < 1e-12:
        raise ConfigError("resample_onto: parameter 'transform' must be a RigidRegistration or an invertible 3 x 3 "
                          f"affine matrix (moving -> fixed on (y, x, 1) in nm), got {transform!r}")
    return H


def _padded(frame: np.ndarray) -> np.ndarray:
    """The frame with one extra pixel each side, linearly extrapolated (so the outer half pixels
    of the field interpolate a ramp exactly)."""
    p = np.pad(frame, 1, mode="edge")
    ny, nx = frame.shape
    if ny > 1:
        p[0, 1:-1], p[-1, 1:-1] = 2 * frame[0] - frame[1], 2 * frame[-1] - frame[-2]
    if nx > 1:
        p[1:-1, 0], p[1:-1, -1] = 2 * frame[:, 0] - frame[:, 1], 2 * frame[:, -1] - frame[:, -2]
    p[0, 0] = p[0, 1] + p[1, 0] - p[1, 1]
    p[0, -1] = p[0, -2] + p[1, -1] - p[1, -2]
    p[-1, 0] = p[-1, 1] + p[-2, 0] - p[-2, 1]
    p[-1, -1] = p[-1, -2] + p[-2, -1] - p[-2, -2]
    return p


@validate_params({"method": [Options({"block-average", "linear"})],
                  "supersample": [Interval(int, 1, 64), None]})
def resample_onto(moving: xr.DataArray, fixed_grid: xr.DataArray, transform, *, method: str = "block-average",
                  supersample: int | None = None) -> xr.DataArray:
    """The moving image (or each frame of a stack) on the fixed image's grid.

    Each fixed pixel gets the mean of the moving image over its footprint (its ``dy x dx`` square
    on the fixed grid), computed from the moving image's bilinear interpolation at ``n x n``
    sub-pixel points, with ``n`` such that the sub-points are no farther apart than the moving
    pixels (1 when the fixed pixels are the finer: plain interpolation). A fixed pixel whose
    footprint the moving field (up to its outer pixel edges) does not fully cover is NaN; so is
    one whose footprint touches a NaN pixel.

    Parameters
    ----------
    moving : xarray.DataArray (y, x) or (time, y, x)
        The image or the stack; ``y``, ``x`` coordinates in a length unit.
    fixed_grid : xarray.DataArray
        Any array with the fixed image's ``y`` and ``x`` coordinates (its values are not used).
    transform : RigidRegistration or numpy.ndarray (3, 3)
        Moving -> fixed coordinates on ``(y, x, 1)`` in nm (:attr:`RigidRegistration.matrix`).
    method : {"block-average", "linear"}
        Footprint means or the bilinear interpolation at the fixed pixel centres.
    supersample : int, optional
        Sub-points per footprint side (default from the pixel sizes, as above).

    Returns
    -------
    xarray.DataArray
        Dims ``(y, x)`` or ``(time, y, x)``: the fixed grid's ``y``, ``x`` coordinates, the
        moving array's other coordinates, name and attributes; float64.

    Examples
    --------
    >>> from ionscope.data import signal
    >>> fine = signal(np.ones((40, 40)), ("y", "x"), name="v", units="V", coords={"y": 5.0, "x": 5.0})
    >>> coarse = signal(np.zeros((3, 3)), ("y", "x"), name="c", units="1", coords={"y": 50.0, "x": 50.0})
    >>> resample_onto(fine, coarse, np.eye(3)).values.round(3).tolist()
    [[nan, nan, nan], [nan, 1.0, 1.0], [nan, 1.0, 1.0]]
    """
    H = _matrix_of(transform)
    fg = _grid(fixed_grid, "the fixed grid", stack=True, values=False)
    mg = _grid(moving, "the moving image", stack=True)
    Hinv = np.linalg.inv(H)
    yf, xf = fg.coords()
    if method == "linear":
        ns = (1, 1)
    elif supersample is not None:
        ns = (int(supersample), int(supersample))
    else:
        fine = min(abs(mg.dy), abs(mg.dx))
        ns = (max(1, math.ceil(abs(fg.dy) / fine - 1e-9)), max(1, math.ceil(abs(fg.dx) / fine - 1e-9)))
    oy = ((np.arange(ns[0]) + 0.5) / ns[0] - 0.5) * abs(fg.dy) if ns[0] > 1 else np.zeros(1)
    ox = ((np.arange(ns[1]) + 0.5) / ns[1] - 0.5) * abs(fg.dx) if ns[1] > 1 else np.zeros(1)

    # coverage: the footprint's corners (or the centre, for "linear") inside the moving field
    ny_m, nx_m = mg.shape
    hy, hx = (0.5 * abs(fg.dy), 0.5 * abs(fg.dx)) if method == "block-average" else (0.0, 0.0)
    ok = np.ones((yf.size, xf.size), bool)
    for cy in (-hy, hy):
        for cx in (-hx, hx):
            ym, xm = _apply(Hinv, yf[:, None] + cy, xf[None, :] + cx)
            iy, ix = mg.index(ym, xm)
            e = 1e-7
            ok &= (iy >= -0.5 - e) & (iy <= ny_m - 0.5 + e) & (ix >= -0.5 - e) & (ix <= nx_m - 0.5 + e)

    # sub-point index coordinates in the (padded) moving image: affine in (row, col, sub-point)
    sy = (oy[:, None] + 0 * ox[None, :]).ravel()
    sx = (0 * oy[:, None] + ox[None, :]).ravel()
    rows = np.flatnonzero(ok.any(axis=1))
    frames = mg.values.reshape((-1, ny_m, nx_m))
    out = np.full((frames.shape[0], yf.size, xf.size), np.nan)
    chunk = max(1, int(2_000_000 // max(1, xf.size * sy.size)))
    padded = [_padded(f) for f in frames]
    for start in range(0, rows.size, chunk):
        r = rows[start:start + chunk]
        ym, xm = _apply(Hinv, yf[r][:, None, None] + sy[None, None, :], xf[None, :, None] + sx[None, None, :])
        iy, ix = mg.index(ym, xm)
        coords = np.stack([iy.ravel() + 1.0, ix.ravel() + 1.0])
        for k, p in enumerate(padded):
            v = ndi.map_coordinates(p, coords, order=1, mode="nearest", prefilter=False)
            out[k, r] = v.reshape(r.size, xf.size, sy.size).mean(axis=-1)
    out[:, ~ok] = np.nan

    fixed_t = fixed_grid.transpose(*(d for d in ("time", "y", "x") if d in fixed_grid.dims))
    coords = {"y": fixed_t["y"].variable.copy(), "x": fixed_t["x"].variable.copy()}
    if "time" in moving.dims:
        dims = ("time", "y", "x")
        for name, c in moving.coords.items():
            if c.dims == ("time",):
                coords[name] = c.variable.copy()
        data = out
    else:
        dims = ("y", "x")
        data = out[0]
    res = xr.DataArray(data, dims=dims, coords=coords, name=moving.name, attrs=dict(moving.attrs))
    return with_provenance(res, "ionscope.register.resample_onto",
                           {"method": method, "supersample": list(ns), "matrix": H.tolist(),
                            "moving_units": units_of(moving)},
                           history=provenance(moving))

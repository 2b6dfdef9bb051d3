"""Cross-sectional Kelvin-probe force microscopy: quantitative potential maps of an operating cell.

From a series of KPFM frames (the SPM readers of :mod:`ionscope.io`: channels ``{name}_{forward|
backward}``, row 0 at the top, per-row times) to referenced, drift-registered, optionally
deconvolved potential maps tied to the cell's state, and from those to active particles and
interface drops (:doc:`/guide/kpfm`). The shape of every technique package: numpy kernels
(``*_kernel``), workflows as library functions that the CLI calls.

- :mod:`~ionscope.kpfm.channels`: channels and traces of a frame, the choice of the Kelvin
  (potential) channel, the sign convention (bias on the tip or the sample) and its check with a
  known applied bias.
- :mod:`~ionscope.kpfm.level`: topography levelling; the potential's line offsets and frame
  offset removed on an equipotential region only (never a plane fit); the reference region
  (``auto``: the flattest band along an image edge, the grounded collector); noise and the
  10-90 % resolution.
- drift: every frame is registered onto the first frame's grid by
  :mod:`ionscope.register.stack` (edge maps, sub-pixel, NaN where a frame does not cover).
- :mod:`~ionscope.kpfm.psf`: the tip-and-cantilever PSF (Gaussian core plus tail), its estimate
  from a sharp edge, and Wiener deconvolution that keeps volts.
- :mod:`~ionscope.kpfm.particles`: particle segmentation, per-particle ``dV(t)``, active particles,
  response times, the resolution at the particles' edges along the scan lines.
- :mod:`~ionscope.kpfm.interface`: the step between linear fits across an interface.
- :mod:`~ionscope.kpfm.timeline`: the shared cell timeline (:mod:`ionscope.timeline`) at every scan
  row, in the SI units of ``kpfm process``.
- :mod:`~ionscope.kpfm.maps`: thin xarray wrappers of single steps (:func:`level_topography`,
  :func:`reference_potential`, :func:`register_frames`, :func:`deconvolve`,
  :func:`segment_particles`) with units and provenance.
- :mod:`~ionscope.kpfm.workflow`: :func:`process_frames` (the chain of ``ionscope kpfm process``),
  :func:`difference_maps`; its steps: :mod:`~ionscope.kpfm.frames` (the frames read, checked and
  put in time order: :func:`read_frames`, :func:`order_frames`) and
  :mod:`~ionscope.kpfm.reference` (the reference region and what its edge gives:
  :func:`reference_box`, :func:`estimate_psf`, the resolution);
  :mod:`~ionscope.kpfm.analysis`: :func:`find_particles`, :func:`profile_frames` (``ionscope kpfm
  particles | profile``).

Example
-------
>>> import numpy as np, xarray as xr
>>> from ionscope.kpfm import process_frames
>>> rng = np.random.default_rng(0)
>>> y = x = np.arange(64) * 5.0            # nm
>>> yy, xx = np.mgrid[:64, :64]             # a grounded collector (x < 12 px) beside a patterned electrode
>>> v = np.where(xx < 12, 0.0, 0.3 + 0.1 * np.sin(xx / 3.0) * np.cos(yy / 4.0)) + rng.normal(0, 0.01, (64, 64))
>>> frame = xr.Dataset({"Potential_forward": (("y", "x"), v + rng.normal(0, 0.05, (64, 1)), {"units": "V"})},
...                    coords={"y": ("y", y, {"units": "nm"}), "x": ("x", x, {"units": "nm"})},
...                    attrs={"bias_on": "tip"})     # the recorded Kelvin bias follows the sample
>>> result, summary = process_frames([frame])
>>> summary["reference_box"], round(float(np.median(result["potential"][0, :, 20:])), 1)
([0, 64, 0, 10], 0.3)
"""

from ionscope.kpfm.channels import check_sign_convention, choose_channel, sample_potential_kernel
from ionscope.kpfm.interface import fit_step_linear_kernel, step_linear_model
from ionscope.kpfm.maps import deconvolve, level_topography, reference_potential, register_frames, segment_particles
from ionscope.kpfm.psf import PSF, fit_edge_kernel, otf_kernel, wiener_deconvolve_kernel
from ionscope.kpfm.analysis import find_particles, profile_frames
from ionscope.kpfm.frames import order_frames, read_frames
from ionscope.kpfm.reference import estimate_psf, reference_box
from ionscope.kpfm.workflow import difference_maps, process_frames

__all__ = [
    "process_frames",
    "find_particles",
    "profile_frames",
    "difference_maps",
    "level_topography",
    "reference_potential",
    "register_frames",
    "deconvolve",
    "segment_particles",
    "read_frames",
    "order_frames",
    "reference_box",
    "estimate_psf",
    "choose_channel",
    "sample_potential_kernel",
    "check_sign_convention",
    "PSF",
    "otf_kernel",
    "fit_edge_kernel",
    "wiener_deconvolve_kernel",
    "step_linear_model",
    "fit_step_linear_kernel",
]

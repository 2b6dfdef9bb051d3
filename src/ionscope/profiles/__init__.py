r"""Interface profiles: band-averaged line profiles and step-model fits with uncertainties.

Technique-neutral (holography potential maps, KPFM, any calibrated ``(y, x)`` image):

- :func:`band_profile` samples an image along a line from ``start`` to ``end``, averages
  ``width`` parallel lines (1 px apart) and estimates each point's standard error from the
  spread across the band, corrected for the noise correlation between the lines (reconstructed
  holography phase is band-limited, so neighbouring pixels are not independent). The noise
  correlation along the line is kept too (:func:`profile_covariance`).
- :func:`fit_step` fits a step model (``erf``, ``tanh``, ``exp``, ``erfc``, ``depletion``,
  optionally with a sharp step at the interface, and blurred by the map's resolution: a
  Gaussian, or the low-pass of a Fourier-holography aperture, :class:`LowPass`) by weighted
  least squares (a grid scan of position and width for the starts) and returns the potential drop,
  the width ``w90``, the interface position, their standard errors and the covariance, and the
  field :math:`E = -dV/dx` and charge density :math:`\rho = -\varepsilon_0\varepsilon_r
  d^2V/dx^2` of the fitted (deblurred) model. With correlated noise the parameter covariance
  takes the correlation into account (sandwich estimator), so the errors stay honest.
- :func:`detect_interface` finds a straight interface in an image (the line of steepest
  change), and :func:`normal_segment` gives the ``start``/``end`` of a profile normal to it.

Modules
-------
- :mod:`~ionscope.profiles.band`: :func:`band_profile` and its kernels, :func:`profile_covariance`,
  :func:`detect_interface`, :func:`normal_segment`.
- :mod:`~ionscope.profiles.models`: :class:`StepModel`, the built-in shapes :data:`MODELS`,
  :func:`register_step_model`.
- :mod:`~ionscope.profiles.lowpass`: :class:`LowPass` (aperture resolution) and the low-pass
  model curves.
- :mod:`~ionscope.profiles.fit`: :func:`fit_step`, :func:`fit_step_arrays`, :class:`StepFit`,
  :func:`step_summary`.
- :mod:`~ionscope.profiles.isoline`: :func:`iso_depth`, where each column of a map last crosses a
  level (front positions).

Step models
-----------
With :math:`u = x - x_0` along the profile (nm) every model is

.. math:: V(x) = V_\mathrm{end} + \Delta\,F(u), \qquad F: 1 \to 0,

so :math:`\Delta = V(\text{start side}) - V(\text{end side})` is the drop (positive when the
potential falls from ``start`` to ``end``):

- ``"erf"``: :math:`F = \Phi(-u/w)` (:math:`\Phi` the standard normal CDF), :math:`w` the
  Gaussian sigma of the transition.
- ``"tanh"``: :math:`F = (1 - \tanh(u/w))/2`.
- ``"exp"``: a one-sided space-charge-like decay, continuous at the interface :math:`x_0`:
  :math:`F = 1` on the start side and :math:`F = e^{-u/w}` (decay length :math:`w`) for
  :math:`u > 0` (``side="end"``: the layer lies on the end side); ``side="start"`` mirrors it,
  :math:`F = 1 - e^{u/w}` for :math:`u < 0` and 0 beyond.
- ``"erfc"``: one-sided like ``exp`` with a half-Gaussian decay :math:`F = 2\Phi(-u/w)`
  (:math:`\mathrm{erfc}(u / \sqrt{2} w)`) for :math:`u > 0`: steepest at the interface, then
  a faster-than-exponential tail - close to the lattice-gas space-charge profiles of
  :doc:`/guide/spacecharge` (on noise-free lattice-gas layers with theta 0.5-0.99, depletion and
  accumulation, drop within 5 % and w90 within 0.4 nm of the model's; ``exp`` overestimates
  the drop by 8-12 % there). Next to a sharp step (``step=True``: a mean-inner-potential
  jump) the steep start of a depleted layer trades against the step and the blur: on the
  holography twin's layer (theta 0.99 beside a 5 V step, 0.25 nm roughness) the drop comes
  out 6 % low with a fitted blur, 0.6 % low without one
  (``benchmarks/holography_precision.py``).
- ``"depletion"``: the Mott-Schottky (full-depletion) parabola :math:`F = (1 - u/w)^2` for
  :math:`0 < u < w`, 0 beyond: uniform space charge over the depletion width :math:`w`.

``blur`` convolves :math:`F` with a Gaussian of that sigma (nm): the resolution of the map
(KPFM: the tip; phase-shifting holography: the pixel and the drift correction). It is exact for
``erf`` (:math:`\sqrt{w^2 + b^2}`) and ``exp`` (an exponentially modified Gaussian; Grushka
1972) and ``erfc`` (Owen's T function; Owen 1956), and uses Gauss-Legendre quadrature between
the kinks of ``depletion`` and 40-point Gauss-Hermite quadrature for ``tanh`` (all within 1e-5
of a numerical convolution).
``blur="fit"`` fits it (one-sided models only: a blurred symmetric step is again one). A
:class:`LowPass` models a Fourier (sideband) reconstruction instead: the aperture filters the
electron wave, which is what the phase of a large step needs (module :class:`LowPass`).

``step=True`` adds a sharp step ``jump`` at :math:`x_0` (blurred like the rest), e.g. the
mean-inner-potential difference of an unbiased electrode | electrolyte map, so that ``drop``
is the space-charge part alone.

``w90`` is the shortest distance that holds 90 % of the drop: :math:`2 \cdot 1.6449\,w` (erf,
the 5-95 % distance), :math:`2\,\mathrm{artanh}(0.9)\,w = 2.944\,w` (tanh),
:math:`\ln(10)\,w` (exp: from the interface to where 90 % of the drop has happened - the
definition of the space-charge literature, e.g. :doc:`/guide/spacecharge`), :math:`1.6449\,w`
(erfc), :math:`(1 - \sqrt{0.1})\,w` (depletion). ``position`` is
:math:`x_0`: the midpoint (erf, tanh) or the interface where the decay starts (exp). Field and
charge are those of the deblurred model; the exp model's kink carries an interface sheet charge
:math:`\varepsilon_0\varepsilon_r E(x_0^+)`, reported as ``areal_charge``.

References
----------
E. Grushka, Anal. Chem. 44 (1972) 1733 (exponentially modified Gaussian). D.B. Owen, Ann.
Math. Stat. 27 (1956) 1075 (Owen's T function, bivariate normal probabilities). H. Flyvbjerg,
H.G. Petersen, J. Chem. Phys. 91 (1989) 461; C.J. Geyer, Stat. Sci. 7 (1992) 473 (integrated
autocorrelation time of correlated samples). P.A. Midgley, Micron 32 (2001) 167 (holography
resolution set by the aperture). H. White, Econometrica 48 (1980) 817; W.K. Newey, K.D. West,
Econometrica 55 (1987) 703 (sandwich covariance under correlated noise).
"""

from ionscope.profiles.band import (
    LENGTH_TO_NM,
    band_profile,
    band_samples,
    band_statistics,
    detect_interface,
    normal_segment,
    profile_covariance,
)
from ionscope.profiles.fit import StepFit, fit_step, fit_step_arrays, step_summary
from ionscope.profiles.isoline import iso_depth
from ionscope.profiles.lowpass import LowPass
from ionscope.profiles.models import MODELS, SIDES, StepModel, register_step_model

__all__ = [
    "LENGTH_TO_NM",
    "MODELS",
    "SIDES",
    "StepModel",
    "StepFit",
    "LowPass",
    "register_step_model",
    "band_samples",
    "band_statistics",
    "band_profile",
    "profile_covariance",
    "fit_step_arrays",
    "step_summary",
    "fit_step",
    "detect_interface",
    "normal_segment",
    "iso_depth",
]

"""MLLS fitting of EELS spectra: kernels against numpy/scipy, the wrapper's checks and laziness."""

from __future__ import annotations

import json

import dask.callbacks
import numpy as np
import pytest
import scipy.optimize

from ionscope.data import signal
from ionscope.eels import mlls_kernels
from ionscope.eels.mlls import factor_design, li_fraction, mlls_fit, mlls_unweighted, mlls_weighted
from ionscope.errors import ConfigError, DimensionError, EmptyDataError, InputError, NonFiniteError

DISP = 0.1
ENERGY = 40.0 + DISP * np.arange(400)  # 40.0 - 79.9 eV


def _edge(e, onset, width, peak):
    """A smooth core-loss-like shape: a sigmoid edge with a white line."""
    return 1.0 / (1.0 + np.exp(-(e - onset) / 0.6)) * np.exp(-(e - onset) / width) + peak * np.exp(
        -0.5 * ((e - onset - 2.0) / 1.2) ** 2
    )


def _reference_arrays(e=ENERGY):
    return np.stack(
        [
            _edge(e, 55.0, 25.0, 1.5) + 0.3,   # "LiCoO2": Li-K + Co-M
            _edge(e, 59.0, 20.0, 0.8) + 0.25,  # "Co3O4"
            _edge(e, 47.0, 30.0, 0.5),         # "Ti"
            _edge(e, 73.0, 15.0, 0.3),         # "Al"
        ],
        axis=1,
    )


NAMES = ["LiCoO2", "Co3O4", "Ti", "Al"]


def _references(e=ENERGY, names=NAMES):
    arr = _reference_arrays(e)
    return {
        n: signal(arr[:, i], ("energy",), name=n, units="1", coords={"energy": e})
        for i, n in enumerate(names)
    }


def _spectrum_image(coef, refs=None, *, noise=0.0, dtype=np.float64, seed=0, dims=("y", "x")):
    """Spectra = coef @ refs.T (+ Gaussian noise), as a labelled array with dims + energy."""
    refs = _reference_arrays() if refs is None else refs
    data = coef @ refs.T
    if noise:
        data = data + noise * np.random.default_rng(seed).standard_normal(data.shape)
    return signal(data.astype(dtype), (*dims, "energy"), name="eels", units="counts",
                  coords={**{d: 2.0 for d in dims}, "energy": ENERGY})


def _coefficients(shape, k=4, seed=1, lo=50.0, hi=500.0):
    return np.random.default_rng(seed).uniform(lo, hi, size=(*shape, k))


# --------------------------------------------------------------------------- kernels


def test_noiseless_mixture_recovered_exactly():
    refs = _reference_arrays()
    coef = _coefficients((300,))
    fit = mlls_unweighted(coef @ refs.T, refs)
    np.testing.assert_allclose(fit.coefficients, coef, rtol=1e-6)
    assert np.all(fit.chi2 < 1e-12 * np.mean((coef @ refs.T) ** 2))
    fit_w = mlls_weighted(coef @ refs.T, refs)
    np.testing.assert_allclose(fit_w.coefficients, coef, rtol=1e-6)


def test_unweighted_matches_numpy_lstsq_per_pixel():
    refs = _reference_arrays()
    coef = _coefficients((50,))
    spectra = coef @ refs.T + 5.0 * np.random.default_rng(2).standard_normal((50, len(ENERGY)))
    fit = mlls_unweighted(spectra, refs)
    e, k = refs.shape
    gram_inv = np.linalg.inv(refs.T @ refs)
    for n in range(50):
        a, res, *_ = np.linalg.lstsq(refs, spectra[n], rcond=None)
        np.testing.assert_allclose(fit.coefficients[n], a, rtol=1e-9)
        np.testing.assert_allclose(fit.chi2[n], res[0] / (e - k), rtol=1e-8)
        np.testing.assert_allclose(fit.stderr[n], np.sqrt(res[0] / (e - k) * np.diag(gram_inv)), rtol=1e-8)


def test_weighted_matches_per_pixel_weighted_lstsq_loop():
    refs = _reference_arrays()
    coef = _coefficients((40,), lo=20.0, hi=200.0)
    counts = np.random.default_rng(3).poisson(coef @ refs.T).astype(np.float64)
    counts[0, :50] = 0.0  # channels below one count get weight 1
    fit = mlls_weighted(counts, refs, return_covariance=True)
    e, k = refs.shape
    for n in range(40):
        w = 1.0 / np.maximum(counts[n], 1.0)
        sw = np.sqrt(w)
        a, *_ = np.linalg.lstsq(refs * sw[:, None], counts[n] * sw, rcond=None)
        chi2 = np.sum(w * (counts[n] - refs @ a) ** 2) / (e - k)
        cov = chi2 * np.linalg.inv(refs.T @ (w[:, None] * refs))
        np.testing.assert_allclose(fit.coefficients[n], a, rtol=1e-9)
        np.testing.assert_allclose(fit.chi2[n], chi2, rtol=1e-8)
        np.testing.assert_allclose(fit.covariance[n], cov, rtol=1e-7)
        np.testing.assert_allclose(fit.stderr[n], np.sqrt(np.diag(cov)), rtol=1e-8)


def _nnls_problem(n=200, seed=4):
    """Spectra whose unconstrained fits often go negative: sparse true coefficients + noise."""
    refs = _reference_arrays()
    rng = np.random.default_rng(seed)
    coef = rng.uniform(0.0, 100.0, size=(n, 4)) * (rng.random((n, 4)) < 0.5)
    spectra = coef @ refs.T + 8.0 * rng.standard_normal((n, len(ENERGY)))
    return refs, spectra


@pytest.mark.parametrize("enumerate_sets", [True, False], ids=["active-set-enumeration", "scipy-fallback"])
def test_nonnegative_matches_scipy_nnls_per_pixel(monkeypatch, enumerate_sets):
    if not enumerate_sets:
        monkeypatch.setattr(mlls_kernels, "_MAX_ENUMERATED", 0)
    refs, spectra = _nnls_problem()
    free = mlls_unweighted(spectra, refs)
    assert np.mean(np.any(free.coefficients < 0, axis=1)) > 0.3  # the constraint matters
    fit = mlls_unweighted(spectra, refs, nonnegative=True)
    for n in range(len(spectra)):
        x, _ = scipy.optimize.nnls(refs, spectra[n])
        np.testing.assert_allclose(fit.coefficients[n], x, rtol=1e-7, atol=1e-9 * np.abs(x).max())
    assert np.all(fit.coefficients >= 0)


@pytest.mark.parametrize("enumerate_sets", [True, False], ids=["active-set-enumeration", "scipy-fallback"])
def test_weighted_nonnegative_matches_scipy_nnls_per_pixel(monkeypatch, enumerate_sets):
    if not enumerate_sets:
        monkeypatch.setattr(mlls_kernels, "_MAX_ENUMERATED", 0)
    refs, spectra = _nnls_problem(n=100, seed=5)
    spectra = np.maximum(spectra + 20.0, 0.0)
    fit = mlls_weighted(spectra, refs, nonnegative=True)
    for n in range(len(spectra)):
        sw = np.sqrt(1.0 / np.maximum(spectra[n], 1.0))
        x, _ = scipy.optimize.nnls(refs * sw[:, None], spectra[n] * sw)
        np.testing.assert_allclose(fit.coefficients[n], x, rtol=1e-6, atol=1e-8 * np.abs(x).max())


@pytest.mark.parametrize("kernel", [mlls_unweighted, mlls_weighted], ids=["unweighted", "poisson"])
def test_float32_nonnegative_with_active_constraints_matches_float64(kernel):
    refs, spectra = _nnls_problem(n=300, seed=14)
    f64 = kernel(spectra, refs, nonnegative=True)
    f32 = kernel(spectra.astype(np.float32), refs, nonnegative=True)
    assert np.mean(np.any(f64.coefficients == 0, axis=1)) > 0.2
    scale = np.abs(f64.coefficients).max()
    np.testing.assert_allclose(f32.coefficients, f64.coefficients, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(f32.chi2, f64.chi2, rtol=1e-5)


def test_nonnegative_leaves_unconstrained_terms_free():
    refs, spectra = _nnls_problem(n=60, seed=6)
    mask = np.array([True, True, False, False])
    fit = mlls_unweighted(spectra, refs, nonnegative=mask)
    assert np.all(fit.coefficients[:, :2] >= 0)
    assert np.any(fit.coefficients[:, 2:] < 0)
    for n in range(len(spectra)):  # reference: bounded least squares per pixel
        lb = np.where(mask, 0.0, -np.inf)
        ref = scipy.optimize.lsq_linear(refs, spectra[n], bounds=(lb, np.inf), tol=1e-14).x
        np.testing.assert_allclose(fit.coefficients[n], ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "poisson"])
def test_standard_errors_match_monte_carlo_scatter(weighted):
    refs = _reference_arrays()
    truth = np.array([300.0, 200.0, 100.0, 80.0])
    rng = np.random.default_rng(7)
    expected = refs @ truth
    if weighted:
        spectra = rng.poisson(expected, size=(4000, len(ENERGY))).astype(np.float64)
        fit = mlls_weighted(spectra, refs)
        assert abs(np.mean(fit.chi2) - 1.0) < 0.05
    else:
        spectra = expected + 6.0 * rng.standard_normal((4000, len(ENERGY)))
        fit = mlls_unweighted(spectra, refs)
    scatter = fit.coefficients.std(axis=0, ddof=1)
    np.testing.assert_allclose(fit.stderr.mean(axis=0), scatter, rtol=0.15)
    np.testing.assert_allclose(fit.coefficients.mean(axis=0), truth, rtol=0.01)


def test_float32_chi2_does_not_cancel_at_high_counts():
    # ||S||^2 - ||c||^2 in float32 would lose every digit here: signal 1e5/channel, noise ~300
    refs = _reference_arrays()
    coef = _coefficients((200,), lo=2e5, hi=5e5)
    rng = np.random.default_rng(8)
    spectra = coef @ refs.T + 300.0 * rng.standard_normal((200, len(ENERGY)))
    for kernel in (mlls_unweighted, mlls_weighted):
        for nonnegative in (False, True):
            f64 = kernel(spectra, refs, nonnegative=nonnegative)
            f32 = kernel(spectra.astype(np.float32), refs, nonnegative=nonnegative)
            np.testing.assert_allclose(f32.chi2, f64.chi2, rtol=1e-4)
            # the float32 GEMM alone is good to ~1e-5 here; the refinement step makes it ~1e-7
            np.testing.assert_allclose(f32.coefficients, f64.coefficients, rtol=2e-6)


def test_factor_reused_and_blocking_and_threads_do_not_change_results(monkeypatch):
    refs = _reference_arrays()
    spectra = _coefficients((500,)) @ refs.T + np.random.default_rng(9).standard_normal((500, 400))
    f = factor_design(refs)
    whole = mlls_unweighted(spectra, f, workers=1)
    monkeypatch.setattr(mlls_kernels, "_BLOCK_BYTES", 7 * 400 * 8)  # 7-row blocks on 2 threads
    blocked = mlls_unweighted(spectra, f, workers=2)
    np.testing.assert_allclose(blocked.coefficients, whole.coefficients, rtol=1e-12)
    np.testing.assert_allclose(blocked.chi2, whole.chi2, rtol=1e-10)


def test_integer_counts_are_fitted_in_float64():
    refs = _reference_arrays()
    counts = np.random.default_rng(10).poisson(_coefficients((20,)) @ refs.T).astype(np.uint16)
    a = mlls_weighted(counts, refs).coefficients
    b = mlls_weighted(counts.astype(np.float64), refs).coefficients
    np.testing.assert_array_equal(a, b)


def test_li_fraction_error_propagation_matches_monte_carlo():
    refs = _reference_arrays()[:, :2]
    truth = np.array([300.0, 100.0])
    spectra = refs @ truth + 4.0 * np.random.default_rng(11).standard_normal((4000, len(ENERGY)))
    fit = mlls_unweighted(spectra, refs, return_covariance=True)
    x, err = li_fraction(fit.coefficients, fit.covariance, 0, 1)
    assert abs(x.mean() - 0.75) < 1e-3
    assert err.mean() == pytest.approx(x.std(ddof=1), rel=0.15)


# --------------------------------------------------------------------------- wrapper


def test_mlls_fit_recovers_coefficients_and_li_fraction():
    coef = _coefficients((6, 5))
    ds = mlls_fit(_spectrum_image(coef), _references(), fit_window=(42.0, 79.0), rich="LiCoO2",
                  poor="Co3O4")
    assert ds.coefficients.dims == ("component", "y", "x")
    assert list(ds.component.values) == NAMES
    np.testing.assert_allclose(ds.coefficients.transpose("y", "x", "component").values, coef, rtol=1e-6)
    np.testing.assert_allclose(ds.li_fraction.values, coef[..., 0] / (coef[..., 0] + coef[..., 1]), rtol=1e-6)
    assert ds.chi2.dims == ("y", "x") and ds.stderr.dims == ("component", "y", "x")
    assert ds.y.attrs["units"] == "nm" and ds.li_fraction.attrs["units"] == "1"
    step = json.loads(ds.attrs["provenance"])[-1]
    assert step["step"] == "ionscope.eels.mlls_fit"
    assert step["params"]["references"] == NAMES and len(step["inputs"]) == 5
    assert ds.attrs["fit_window_eV"] == pytest.approx([42.0, 79.0])
    assert json.loads(ds.li_fraction.attrs["provenance"])[-1]["step"] == "ionscope.eels.mlls_fit"


def test_references_are_interpolated_onto_the_data_axis():
    # references sampled on a grid offset by a third of a channel, over a wider range
    e_ref = np.arange(30.0, 90.0, DISP) + DISP / 3
    refs_fine = {n: r for n, r in _references(e_ref).items()}
    coef = _coefficients((4,))
    ds = mlls_fit(_spectrum_image(coef, dims=("x",)), refs_fine, fit_window=(45.0, 78.0))
    np.testing.assert_allclose(ds.coefficients.transpose("x", "component").values, coef, rtol=2e-3)


def test_references_in_kev_and_sequence_names():
    refs = list(_references().values())
    kev = [r.assign_coords(energy=r.energy.values / 1e3).rename(r.name) for r in refs]
    for r in kev:
        r.energy.attrs["units"] = "keV"
    coef = _coefficients((3,))
    ds = mlls_fit(_spectrum_image(coef, dims=("x",)), kev)
    assert list(ds.component.values) == NAMES
    np.testing.assert_allclose(ds.coefficients.transpose("x", "component").values, coef, rtol=1e-6)


@pytest.mark.parametrize("shift_ev", [0.04, -0.03])
def test_derivative_terms_recover_a_small_shift(shift_ev):
    e_ref = np.arange(30.0, 90.0, DISP)
    refs = _references(e_ref)
    coef = np.array([[300.0, 200.0, 100.0, 50.0]])
    shifted = _reference_arrays(ENERGY - shift_ev)  # every reference moved by +shift_ev
    da = _spectrum_image(coef, refs=shifted, dims=("x",))
    ds = mlls_fit(da, refs, fit_window=(42.0, 78.0), derivatives=True)
    shifts = ds.energy_shift.sel(x=0).values
    np.testing.assert_allclose(shifts, shift_ev, rtol=0.1)
    assert ds.energy_shift.attrs["units"] == "eV"
    np.testing.assert_allclose(ds.coefficients.sel(x=0).values, coef[0], rtol=2e-3)
    plain = mlls_fit(da, refs, fit_window=(42.0, 78.0))
    assert np.all(ds.chi2.values < 1e-3 * plain.chi2.values)


def test_derivatives_with_nonnegative_constrain_only_reference_terms():
    e_ref = np.arange(30.0, 90.0, DISP)
    coef = np.array([[300.0, 0.0, 100.0, 50.0]])
    da = _spectrum_image(coef, refs=_reference_arrays(ENERGY + 0.03), noise=2.0, dims=("x",))
    ds = mlls_fit(da, _references(e_ref), fit_window=(42.0, 78.0), derivatives=True, nonnegative=True)
    assert np.all(ds.coefficients.values >= 0)
    assert ds.energy_shift.sel(component="LiCoO2", x=0) == pytest.approx(-0.03, rel=0.2)


def test_float32_matches_float64():
    coef = _coefficients((5, 4))
    da = _spectrum_image(coef, noise=3.0)
    for weighted in (False, True):
        kw = dict(fit_window=(42.0, 79.0), weighted=weighted, rich="LiCoO2", poor="Co3O4")
        d64 = mlls_fit(da, _references(), **kw)
        d32 = mlls_fit(da.astype(np.float32), _references(), **kw)
        assert d32.coefficients.dtype == np.float32 and d64.coefficients.dtype == np.float64
        for name in ("coefficients", "stderr", "chi2", "li_fraction", "li_fraction_stderr"):
            np.testing.assert_allclose(d32[name].values, d64[name].values, rtol=1e-4, err_msg=name)


class _CountComputes(dask.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.count = 0

    def _start(self, dsk):
        self.count += 1


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "poisson"])
def test_lazy_equals_eager_and_building_does_not_compute(weighted):
    coef = _coefficients((6, 5, 4), seed=12)
    refs = _reference_arrays()
    counts = np.random.default_rng(13).poisson(coef @ refs.T).astype(np.float32)
    eager = signal(counts, ("time", "y", "x", "energy"), name="eels", units="counts",
                   coords={"time": 60.0, "y": 2.0, "x": 2.0, "energy": ENERGY})
    lazy = eager.chunk({"time": 2, "y": 3, "energy": 100})
    kw = dict(fit_window=(42.0, 79.0), weighted=weighted, nonnegative=True, rich="LiCoO2", poor="Co3O4")
    with _CountComputes() as counter:
        ds_lazy = mlls_fit(lazy, _references(), **kw)
        assert counter.count == 0
    assert ds_lazy.coefficients.chunks is not None and ds_lazy.li_fraction.chunks is not None
    ds_eager = mlls_fit(eager, _references(), **kw)
    computed = ds_lazy.compute()
    for name in ds_eager.data_vars:  # the same row-wise arithmetic, so bit for bit
        np.testing.assert_array_equal(computed[name].values, ds_eager[name].values, err_msg=name)
        assert computed[name].dims == ds_eager[name].dims
    assert computed.attrs["provenance"] != ds_eager.attrs["provenance"]  # dask token vs sha256


def test_lazy_non_finite_spectra_raise_when_computed():
    counts = _spectrum_image(_coefficients((4, 4)))
    counts.values[2, 1, 100] = np.nan
    ds = mlls_fit(counts.chunk({"y": 2}), _references())
    with pytest.raises(NonFiniteError, match="NaN/inf"):
        ds.compute()
    with pytest.raises(NonFiniteError, match=r"first at y=2, x=1"):
        mlls_fit(counts, _references())


# --------------------------------------------------------------------------- errors


@pytest.fixture
def image():
    return _spectrum_image(_coefficients((3, 3)))


def test_error_reference_does_not_cover_window(image):
    refs = _references()
    refs["Al"] = refs["Al"].isel(energy=slice(0, 300))  # ends at 69.9 eV
    with pytest.raises(InputError, match=r"'Al' covers 40-69.9 eV but the fit window needs 42-79 eV"):
        mlls_fit(image, refs, fit_window=(42.0, 79.0))


def test_error_reference_dispersion_too_fine_says_to_bin(image):
    e_fine = np.arange(30.0, 90.0, DISP / 5)
    refs = _references()
    refs["Ti"] = _references(e_fine)["Ti"]
    with pytest.raises(InputError, match=r"5x finer.*coarsen\(energy=5"):
        mlls_fit(image, refs)


def test_error_reference_dispersion_too_coarse(image):
    e_coarse = np.arange(30.0, 90.0, DISP * 4)
    refs = _references()
    refs["Ti"] = _references(e_coarse)["Ti"]
    with pytest.raises(InputError, match=r"4x coarser"):
        mlls_fit(image, refs)


def test_error_window_outside_data(image):
    with pytest.raises(ConfigError, match=r"lies outside the data, which cover 39.95-79.95 eV"):
        mlls_fit(image, _references(), fit_window=(45.0, 95.0))


def test_error_window_with_fewer_channels_than_components(image):
    with pytest.raises(ConfigError, match=r"holds 3 channel\(s\) but 4 terms are fitted"):
        mlls_fit(image, _references(), fit_window=(50.0, 50.2))
    with pytest.raises(ConfigError, match=r"8 terms"):
        mlls_fit(image, _references(), fit_window=(50.0, 50.5), derivatives=True)


def test_error_all_zero_spectra(image):
    with pytest.raises(EmptyDataError, match="all 9 spectra are zero in the fit window"):
        mlls_fit(image * 0.0, _references())


def test_zero_pixels_are_fine_and_give_nan_li_fraction(image):
    image = image.copy()
    image[0, 0] = 0.0
    ds = mlls_fit(image, _references(), weighted=True, rich="LiCoO2", poor="Co3O4")
    assert np.all(ds.coefficients.isel(y=0, x=0) == 0)
    assert np.isnan(ds.li_fraction.isel(y=0, x=0))
    assert np.isfinite(ds.li_fraction.isel(y=1, x=1))


def test_error_reference_zero_in_window(image):
    refs = _references()
    refs["Al"] = refs["Al"] * (refs["Al"].energy < 60.0)
    with pytest.raises(InputError, match=r"'Al' is zero throughout the fit window"):
        mlls_fit(image, refs, fit_window=(62.0, 79.0))


def test_error_collinear_references(image):
    refs = _references()
    refs["copy"] = 2.0 * refs["LiCoO2"]
    with pytest.raises(InputError, match=r"linearly dependent .* 'LiCoO2' and 'copy'"):
        mlls_fit(image, refs)


def test_error_rich_poor_names(image):
    with pytest.raises(ConfigError, match="give both rich= and poor="):
        mlls_fit(image, _references(), rich="LiCoO2")
    with pytest.raises(ConfigError, match=r"\['LCO'\] are not among the references"):
        mlls_fit(image, _references(), rich="LCO", poor="Co3O4")


def test_error_dims_and_units(image):
    with pytest.raises(DimensionError, match="no 'energy' dim"):
        mlls_fit(image.rename(energy="mass"), _references())
    px = image.copy()
    px["energy"].attrs["units"] = "px"
    with pytest.raises(InputError, match="not an energy unit"):
        mlls_fit(px, _references())
    with pytest.raises(DimensionError, match="1-D along 'energy'"):
        mlls_fit(image, {"bad": image})
    with pytest.raises(InputError, match="unique"):
        mlls_fit(image, [_references()["Ti"], _references()["Ti"]])


def test_error_kernel_shapes():
    refs = _reference_arrays()
    with pytest.raises(InputError, match=r"shape \(N, 400\)"):
        mlls_unweighted(np.ones((3, 399)), refs)
    with pytest.raises(InputError, match="more channels than terms"):
        factor_design(np.ones((3, 4)))

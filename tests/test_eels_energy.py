"""Energy calibration and sub-channel alignment (ionscope.eels.energy)."""

from __future__ import annotations

import dask
import dask.array
import numpy as np
import pytest
from scipy.special import erf

from daskcount import CountingScheduler

from ionscope.data import provenance, signal
from ionscope.eels.energy import align_energy, apply_shifts, energy_axis, estimate_shifts
from ionscope.errors import (
    ConfigError,
    DimensionError,
    EmptyDataError,
    InputError,
    NonFiniteError,
    NonUniformAxisError,
)

D = 0.25
E = 40 + D * np.arange(160)


def edge_spectrum(shift: float = 0.0, scale: float = 1.0, k: float = 2e4) -> np.ndarray:
    """Power law + Li-K-like onset + peak, all displaced by ``shift`` eV."""
    e = E - shift
    bg = k * (e / 50.0) ** -3
    edge = 0.2 * k * 0.5 * (1 + erf((e - 55) / 0.5)) * (e / 55) ** -1.5
    peak = 0.1 * k * np.exp(-0.5 * ((e - 62) / 1.0) ** 2)
    return scale * (bg + edge + peak)


def spectrum_image(values, dims=("y", "x", "energy"), energy=E, unit="eV"):
    return signal(values, dims, name="eels", units="counts", coords={"energy": energy},
                  coord_units={"energy": unit})


# --------------------------------------------------------------------------- calibration


def test_energy_axis_reads_ev_and_converts_kev():
    da = spectrum_image(np.ones((2, 2, E.size)))
    assert energy_axis(da) == pytest.approx((40.0, 0.25))
    da_kev = spectrum_image(np.ones((2, 2, E.size)), energy=E / 1000, unit="keV")
    assert energy_axis(da_kev) == pytest.approx((40.0, 0.25))


def test_energy_axis_rejects_uncalibrated_and_uneven_axes():
    with pytest.raises(InputError, match="calibrate it in eV"):
        energy_axis(spectrum_image(np.ones((1, 1, 5)), energy=np.arange(5.0), unit="px"))
    uneven = np.array([40, 40.25, 40.5, 41.0, 41.25])
    with pytest.raises(NonUniformAxisError, match="evenly spaced"):
        energy_axis(spectrum_image(np.ones((1, 1, 5)), energy=uneven))
    with pytest.raises(NonUniformAxisError, match="decreases"):
        energy_axis(spectrum_image(np.ones((1, 1, 5)), energy=45 - 0.25 * np.arange(5)))


# --------------------------------------------------------------------------- kernels


def test_estimate_shifts_recovers_sub_channel_shifts_on_noisy_edges():
    rng = np.random.default_rng(3)
    true = np.array([0.37, -0.37, 0.0, 1.62, -2.41, 0.05, 0.91, -0.73]) * D  # eV
    scales = rng.uniform(0.8, 1.2, true.size)  # thickness varies from pixel to pixel
    clean = np.stack([edge_spectrum(t, s, k=1e6) for t, s in zip(true, scales)])
    noisy = rng.poisson(clean).astype(np.float64)
    found = estimate_shifts(E, noisy, (50, 70), edge_spectrum(0.0, k=1e6))
    assert np.abs(found - true).max() / D < 0.05


def test_estimate_shifts_is_exact_on_noiseless_spectra_and_relative_to_the_mean():
    true = np.linspace(-1.5, 1.5, 7) * D + 0.37 * D
    clean = np.stack([edge_spectrum(t) for t in true])
    exact = estimate_shifts(E, clean, (50, 70), edge_spectrum(0.0))
    np.testing.assert_allclose(exact, true, atol=1e-3 * D)
    relative = estimate_shifts(E, clean, (50, 70))  # mean spectrum as reference
    np.testing.assert_allclose(relative - relative.mean(), true - true.mean(), atol=0.01 * D)


def test_estimate_shifts_float32_matches_float64():
    clean = np.stack([edge_spectrum(t) for t in (0.1, -0.2)])
    a = estimate_shifts(E, clean, (50, 70), edge_spectrum(0.0))
    b = estimate_shifts(E, clean.astype(np.float32), (50, 70), edge_spectrum(0.0))
    np.testing.assert_allclose(a, b, atol=1e-3 * D)


def test_flat_spectra_get_zero_shift():
    spectra = np.stack([np.zeros(E.size), np.full(E.size, 5.0), edge_spectrum(0.1)])
    shifts = estimate_shifts(E, spectra, (50, 70), edge_spectrum(0.0))
    assert shifts[0] == 0 and shifts[1] == 0
    assert shifts[2] == pytest.approx(0.1, abs=1e-3)


@pytest.mark.parametrize("method", ["linear", "fourier"])
def test_apply_shifts_undoes_the_measured_shift(method):
    true = np.array([0.37, -1.3]) * D
    clean = np.stack([edge_spectrum(t) for t in true])
    aligned = apply_shifts(E, clean, true, method=method)
    residual = estimate_shifts(E, aligned, (50, 70), edge_spectrum(0.0))
    assert np.abs(residual).max() < 0.01 * D
    inside = slice(20, -20)
    np.testing.assert_allclose(aligned[:, inside], edge_spectrum(0.0)[None, inside].repeat(2, 0),
                               rtol=0.02)


def test_apply_shifts_keeps_float32_and_rejects_unknown_method():
    out = apply_shifts(E, np.ones((3, E.size), np.float32), np.zeros(3))
    assert out.dtype == np.float32
    with pytest.raises(ConfigError, match="unknown shift method"):
        apply_shifts(E, np.ones((1, E.size)), np.zeros(1), method="cubic")


# --------------------------------------------------------------------------- wrapper


def drifting_image(rng, k=2e5):
    true = rng.uniform(-1.5, 1.5, (3, 4)) * D
    clean = np.stack([[edge_spectrum(t, k=k) for t in row] for row in true])
    return spectrum_image(rng.poisson(clean).astype(np.float32)), true


def test_align_energy_returns_aligned_spectra_and_a_shift_map():
    rng = np.random.default_rng(0)
    da, true = drifting_image(rng)
    aligned, shift = align_energy(da, (50, 70), reference=edge_spectrum(0.0, k=2e5))
    assert aligned.dims == da.dims and aligned.dtype == np.float32
    np.testing.assert_array_equal(aligned["energy"].values, da["energy"].values)
    assert shift.dims == ("y", "x") and shift.attrs["units"] == "eV" and shift.name == "energy_shift"
    assert np.abs(shift.values - true).max() < 0.15 * D
    steps = provenance(aligned)
    assert steps[-1]["step"] == "ionscope.eels.align_energy"
    assert steps[-1]["params"]["window_eV"] == [50.0, 70.0]
    assert provenance(shift)[-1]["step"] == "ionscope.eels.align_energy"
    _, residual = align_energy(aligned, (50, 70), reference=edge_spectrum(0.0, k=2e5))
    assert np.abs(residual.values).max() < 0.15 * D


def test_align_energy_moves_energy_last_and_accepts_a_reference_dataarray():
    rng = np.random.default_rng(1)
    da, true = drifting_image(rng)
    ref = spectrum_image(edge_spectrum(0.0, k=2e5), dims=("energy",))
    aligned, shift = align_energy(da.transpose("energy", "y", "x"), (50, 70), reference=ref)
    assert aligned.dims == ("y", "x", "energy")
    assert np.abs(shift.values - true).max() < 0.15 * D


def test_align_energy_stays_lazy_on_dask_arrays():
    rng = np.random.default_rng(2)
    da, _ = drifting_image(rng)
    lazy = da.chunk({"y": 1, "x": 2})
    with dask.config.set(scheduler=CountingScheduler(0)):
        aligned, shift = align_energy(lazy, (50, 70))
    assert isinstance(aligned.data, dask.array.Array) and isinstance(shift.data, dask.array.Array)
    eager_aligned, eager_shift = align_energy(da, (50, 70))
    np.testing.assert_allclose(shift.compute().values, eager_shift.values, atol=1e-9)
    np.testing.assert_allclose(aligned.compute().values, eager_aligned.values, rtol=1e-6)


@pytest.mark.parametrize(
    ("window", "message"),
    [((20, 45), "outside the data"), ((50, 50.3), "at least 2 channels"), ((60, 50), "lo < hi")],
)
def test_align_energy_rejects_bad_windows(window, message):
    da = spectrum_image(np.ones((2, 2, E.size)))
    with pytest.raises(ConfigError, match=message):
        align_energy(da, window)


def test_align_energy_rejects_bad_inputs():
    values = np.ones((2, 2, E.size))
    values[0, 1, 3] = np.nan
    with pytest.raises(NonFiniteError, match="NaN"):
        align_energy(spectrum_image(values), (50, 70))
    with pytest.raises(EmptyDataError, match="all zero"):
        align_energy(spectrum_image(np.zeros((2, 2, E.size))), (50, 70))
    with pytest.raises(DimensionError, match="no 'energy' dim"):
        align_energy(signal(np.ones((2, 3)), ("y", "x"), name="a", units="1"), (50, 70))
    with pytest.raises(DimensionError, match="does not know"):
        align_energy(signal(np.ones((2, E.size)), ("mass", "energy"), name="a", units="1",
                            coords={"energy": E}), (50, 70))
    uneven = E.copy()
    uneven[5:] += 0.1
    with pytest.raises(NonUniformAxisError):
        align_energy(spectrum_image(np.ones((1, 1, E.size)), energy=uneven), (50, 70))
    with pytest.raises(InputError, match="reference"):
        align_energy(spectrum_image(np.ones((1, 1, E.size))), (50, 70), reference=np.ones(3))

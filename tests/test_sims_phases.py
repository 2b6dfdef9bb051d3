"""TOF-SIMS phases and lithium per phase / particle against synthetic ground truth: particles of
LiCoPO4 and grains of Pd in LATP, drawn at 4 x 4 sub-pixels so that pixels on boundaries are mixed,
with Poisson matrix-ion and Li counts."""

from __future__ import annotations

import numpy as np
import pytest

from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.sims import (
    nnls_kernel, phase_lithium, phase_name, phases_from_labels, segment_phases, unmix,
)

MATRIX = ["7Li", "59Co", "31P", "48Ti", "27Al", "106Pd"]
#: Matrix-ion counts per pixel of each pure phase (7Li is left out of the phases: 0 here).
ENDMEMBERS = {"LiCoPO4": [0, 60.0, 35.0, 0.3, 0.2, 0.2], "LATP": [0, 0.3, 45.0, 40.0, 12.0, 0.2],
              "Pd": [0, 0.2, 0.5, 0.3, 0.2, 80.0]}
TRUE_NAMES = ["LiCoPO4", "LATP", "Pd"]


def microstructure(n=64, seed=0, sub=4, pd=True):
    """True fractions (3, n, n) of LiCoPO4, LATP, Pd and the fine phase and particle maps."""
    rng = np.random.default_rng(seed)
    size = n * sub
    yy, xx = np.mgrid[:size, :size] + 0.5
    phase = np.ones((size, size), dtype=int)
    part = np.zeros((size, size), dtype=int)
    k = 0
    for _ in range(n * n // 60):
        cy, cx = rng.uniform(0, size, 2)
        r = rng.uniform(1.0, 3.0) * sub  # particles 200-600 nm across at 100 nm pixels
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        if np.any(part[disc] > 0):
            continue
        k += 1
        phase[disc], part[disc] = 0, k
    if pd:
        for _ in range(n * n // 200):
            cy, cx = rng.uniform(0, size, 2)
            r = rng.uniform(0.6, 1.5) * sub
            phase[((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) & (phase == 1)] = 2
    frac = np.stack([(phase == p).reshape(n, sub, n, sub).mean(axis=(1, 3)) for p in range(3)])
    return frac, phase, part


def matrix_counts(frac, seed):
    e = np.array([ENDMEMBERS[k] for k in TRUE_NAMES])
    return np.random.default_rng(seed).poisson(np.einsum("pyx,pi->iyx", frac, e)).astype(float)


def lithium(phase, part, n, sub, seed):
    """Expected Li counts per pixel in three states (pristine, charged, discharged): half the
    particles lose 40 % on charge and regain most of it, the others keep theirs; LATP loses 20 %
    on the first charge and keeps it lost; Pd holds none. And the area-weighted truth per phase."""
    rng = np.random.default_rng(seed + 7)
    k = part.max()
    lose = rng.random(k + 1) < 0.5
    fac = np.ones((3, k + 1))
    fac[1, lose], fac[2, lose] = 0.6, 0.9
    rate = rng.uniform(0.8, 1.2, k + 1) * 120.0
    latp = np.array([25.0, 20.0, 20.0])
    maps = np.stack([np.where(phase == 0, (rate * fac[s])[part], np.where(phase == 1, latp[s], 0.0))
                     .reshape(n, sub, n, sub).mean(axis=(1, 3)) for s in range(3)])
    area = np.bincount(part.ravel(), minlength=k + 1)[1:]
    lcp = np.array([(area * rate[1:] * fac[s, 1:]).sum() for s in range(3)])
    return maps, {"LiCoPO4": lcp / lcp[0], "LATP": latp / latp[0]}, fac[:, 1:]


def _as_truth(phases):
    return np.array([TRUE_NAMES.index(phases.names[p]) for p in range(len(phases.names))])


# --------------------------------------------------------------------------- unmixing


def test_nnls_kernel_matches_scipy_nnls():
    from scipy.optimize import nnls

    rng = np.random.default_rng(0)
    for k in (2, 4, 6):
        e = rng.uniform(0, 10, (k, 7))
        b = rng.normal(0, 5, (200, 7)) + rng.uniform(0, 1, (200, k)) @ e
        ours = nnls_kernel(b, e)
        ref = np.array([nnls(e.T, bi)[0] for bi in b])
        np.testing.assert_allclose(ours, ref, atol=1e-8)
    with pytest.raises(ConfigError, match="at most 6"):
        nnls_kernel(np.ones((2, 8)), np.eye(8))


@pytest.mark.parametrize("seed", [0, 1])
def test_majority_phase_is_right_on_mixed_pixels(seed):
    frac, _, _ = microstructure(64, seed)
    counts = matrix_counts(frac, seed)
    phases = segment_phases(counts, MATRIX, seed=0)
    assert phases.names == TRUE_NAMES and phases.matrix == MATRIX[1:]
    to_true = _as_truth(phases)
    predicted = to_true[phases.labels]
    majority, share = frac.argmax(0), frac.max(0)
    sure = share >= 0.6
    mixed = sure & (share < 0.95)
    assert mixed.sum() > 300  # many pixels are mixed
    assert (predicted[sure] == majority[sure]).mean() >= 0.97
    assert (predicted[mixed] == majority[mixed]).mean() >= 0.93
    est = phases.fractions[np.argsort(to_true)]
    assert np.sqrt(np.mean((est - frac) ** 2)) < 0.05
    np.testing.assert_allclose(phases.fractions.sum(0), 1.0)
    # endmembers: the pure phases' counts, mixed edge pixels left out
    np.testing.assert_allclose(phases.endmembers[phases.index("LiCoPO4")][:2], [60, 35], rtol=0.05)
    np.testing.assert_allclose(phases.endmembers[phases.index("Pd")][-1], 80, rtol=0.06)


def test_two_phases_found_when_the_third_ion_is_only_background():
    frac, _, _ = microstructure(48, 3, pd=False)
    phases = segment_phases(matrix_counts(frac, 3), MATRIX, seed=0)
    assert phases.names == ["LiCoPO4", "LATP"] and set(phases.bic) == {2, 3, 4, 5, 6}
    majority = frac[:2].argmax(0)
    sure = frac.max(0) >= 0.6
    assert (_as_truth(phases)[phases.labels][sure] == majority[sure]).mean() >= 0.97


def test_unmix_other_states_with_the_first_states_endmembers():
    frac, _, _ = microstructure(40, 2)
    states = np.stack([matrix_counts(frac, s) for s in range(3)])
    phases = segment_phases(states[0], MATRIX, seed=1)
    f = unmix(states, MATRIX, phases)
    assert f.shape == (3, len(phases.names), 40, 40) and f.min() >= 0
    np.testing.assert_allclose(f[0], phases.fractions)
    free = unmix(states, MATRIX, phases, nonnegative=False)
    np.testing.assert_allclose(free.sum(1), 1.0)
    assert free.min() < 0  # unconstrained: noise about 0, unbiased
    # in pure pixels NNLS fractions of the absent phases are >= 0, biased; unconstrained ones average 0
    pure_latp = frac[1] == 1
    other = [i for i, n in enumerate(phases.names) if n != "LATP"]
    assert f[:, other][:, :, pure_latp].mean() > 0.005
    assert abs(free[:, other][:, :, pure_latp].mean()) < 0.003


def test_phase_names_and_bad_input():
    assert [phase_name(i) for i in ("59Co", "48Ti", "27Al", "106Pd", "197Au", "CoO")] == \
        ["LiCoPO4", "LATP", "LATP", "Pd", "Au", "CoO"]
    counts = np.ones((3, 8, 8))
    with pytest.raises(InputError, match="at least two matrix ions"):
        segment_phases(counts, ["7Li", "6Li", "59Co"])
    with pytest.raises(DimensionError, match="3 ions"):
        segment_phases(np.ones((2, 8, 8)), ["7Li", "59Co", "48Ti"])
    with pytest.raises(ConfigError, match="n_phases"):
        segment_phases(counts, ["59Co", "48Ti", "106Pd"], n_phases=7)
    with pytest.raises(InputError, match="matrix ions \\['197Au'\\]"):
        segment_phases(counts, ["59Co", "48Ti", "106Pd"], matrix=["197Au", "59Co"])


def test_user_labels():
    labels = np.array([[0, 0, 1], [2, 1, 1]])
    p = phases_from_labels(labels, ["LiCoPO4", "LATP", "Pd"])
    assert p.labels.tolist() == labels.tolist() and p.fractions.shape == (3, 2, 3)
    p = phases_from_labels(labels, {1: "LATP", 2: "Pd"})
    assert p.labels.tolist() == [[-1, -1, 0], [1, 0, 0]]
    with pytest.raises(InputError, match=r"codes \[2\] have no name"):
        phases_from_labels(labels, ["LiCoPO4", "LATP"])
    with pytest.raises(InputError, match="no pixels"):
        phases_from_labels(labels, {1: "LATP", 5: "Pd"})
    with pytest.raises(InputError, match="integer codes"):
        phases_from_labels(labels.astype(str), ["a", "b", "c"])
    frac, _, _ = microstructure(32, 4)
    counts = matrix_counts(frac, 4)
    p = phases_from_labels(frac.argmax(0), TRUE_NAMES, counts=counts, ions=MATRIX)
    assert p.endmembers.shape == (3, 5)
    assert (unmix(counts, MATRIX, p).argmax(0) == frac.argmax(0))[frac.max(0) == 1].mean() > 0.99


# --------------------------------------------------------------------------- lithium per phase


@pytest.mark.parametrize("seed", [0, 5])
@pytest.mark.parametrize("nonnegative", [True, False])
def test_lithium_per_phase_relative_to_pristine_matches_the_truth(seed, nonnegative):
    n, sub = 64, 4
    frac, phase, part = microstructure(n, seed, sub)
    expected, truth, _ = lithium(phase, part, n, sub, seed)
    counts = np.stack([matrix_counts(frac, 10 * seed + s) for s in range(3)])
    phases = segment_phases(counts[0], MATRIX, seed=0)
    fractions = unmix(counts, MATRIX, phases, nonnegative=nonnegative)
    li = np.random.default_rng(seed + 99).poisson(expected)
    res = phase_lithium(li, fractions, phases.names)
    for name in ("LiCoPO4", "LATP"):
        p = res.names.index(name)
        np.testing.assert_allclose(res.rel[p], truth[name], atol=0.02)
        assert np.all(np.abs(res.rel[p, 1:] - truth[name][1:]) < 5 * res.rel_err[p, 1:])
        assert not res.no_lithium[p]
    assert res.z[res.names.index("LATP"), 1] < -20  # the first-charge loss is significant
    assert res.no_lithium[res.names.index("Pd")] and res.li[res.names.index("Pd"), 0] < 1
    rows = res.rows(["pristine", "charged", "discharged"])
    assert len(rows) == 9 and rows[1]["state"] == "charged" and rows[0]["li_rel_pristine"] == 1.0
    assert set(rows[0]) >= {"phase", "state", "li_mean", "li_err", "li_rel_pristine", "li_rel_pristine_err", "pixels"}


def test_particles_that_lose_lithium_are_told_from_those_that_do_not():
    n, sub = 64, 4
    frac, phase, part = microstructure(n, 0, sub)
    expected, _, fac = lithium(phase, part, n, sub, 0)
    li = np.random.default_rng(1).poisson(expected)
    res = phase_lithium(li, frac, TRUE_NAMES)
    # each found particle's true particle: the one covering most of it
    coarse = part.reshape(n, sub, n, sub).transpose(0, 2, 1, 3).reshape(n, n, -1)
    big = np.bincount(part.ravel())[1:] >= 4 * sub * sub
    hits, right = 0, 0
    for j in range(1, res.particles.max() + 1):
        sub_labels = coarse[res.particles == j].ravel()
        true_j = np.bincount(sub_labels[sub_labels > 0]).argmax()
        if not big[true_j - 1]:
            continue
        hits += 1
        right += abs(res.particle_rel[j - 1, 1] - fac[1, true_j - 1]) < 0.1
    assert hits > 20 and right >= 0.9 * hits  # touching particles are one label: a mixed truth
    assert res.particle_li.shape == (res.particles.max(), 3) and np.all(res.particle_area > 0)


def test_error_bars_are_consistent_over_seeds():
    z = []
    for seed in range(6):
        n, sub = 48, 4
        frac, phase, part = microstructure(n, seed, sub)
        expected, truth, _ = lithium(phase, part, n, sub, seed)
        res = phase_lithium(np.random.default_rng(seed).poisson(expected), frac, TRUE_NAMES)
        for name in ("LiCoPO4", "LATP"):
            p = res.names.index(name)
            z += list((res.rel[p, 1:] - truth[name][1:]) / res.rel_err[p, 1:])
    z = np.asarray(z)
    assert abs(z.mean()) < 1.0 and 0.5 < z.std() < 1.6


def test_phase_lithium_input_checks():
    frac = np.ones((2, 4, 4)) * 0.5
    with pytest.raises(DimensionError, match="fractions"):
        phase_lithium(np.ones((2, 4, 4)), np.ones((2, 5, 4)), ["a", "b"])
    with pytest.raises(InputError, match="non-finite"):
        phase_lithium(np.full((4, 4), np.nan), frac, ["a", "b"])
    with pytest.raises(InputError, match="3 phase names for 2"):
        phase_lithium(np.ones((4, 4)), frac, ["a", "b", "c"])
    with pytest.raises(InputError, match="reference state 3"):
        phase_lithium(np.ones((2, 4, 4)), frac, ["a", "b"], reference=3)
    res = phase_lithium(np.full((2, 4, 4), 10.0), frac, ["LATP", "Pd"], particle_phase=None)
    assert res.particle_li.shape == (0, 2)


def test_the_phases_docstring_examples_run():
    import doctest

    import ionscope.sims.phases

    result = doctest.testmod(ionscope.sims.phases, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

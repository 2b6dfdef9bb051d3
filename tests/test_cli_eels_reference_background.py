"""`ionscope eels lithium --reference-background`: background-free references from files on
their own energy range (issue 17, item 1), measured against the eels_licoo2 twin's truth, and
the messages that name the input they are about."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionscope import io
from ionscope.eels import subtract_powerlaw
from ionscope.simulate import simulate

TWIN = {"li_params": {"ny": 24, "nx": 16}, "frames": [0, 60], "dose": 1e8, "reference_dose": 1e10}
OWN_AXIS = {"energy_start_eV": 35.0, "dispersion_eV": 0.1, "channels": 700}
PHASES = {"licoo2": "rich", "coo2": "poor", "co3o4": "co3o4"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The raw spectrum image (Zarr, with its raw references as variables) and, as EMSA files
    like a database's, background-subtracted references on their own axis: measured by a
    second run of the twin at 0.1 eV from 35 eV (the image: 0.25 eV from 30 eV), their own
    pre-edge power law (40-52 eV) removed, cut to 53-99 eV."""
    root = tmp_path_factory.mktemp("refbg")
    ds = simulate("eels_licoo2", seed=2, **TWIN)
    io.save(ds, root / "si.zarr")
    own = simulate("eels_licoo2", seed=5, li_params=TWIN["li_params"], frames=[0],
                   reference_dose=TWIN["reference_dose"], **OWN_AXIS)
    for phase, name in PHASES.items():
        free = subtract_powerlaw(own[f"ref_{phase}"], (40.0, 52.0))["signal"].sel(energy=slice(53.0, 99.0))
        io.export(free.rename(name), root / f"{name}.msa")
        io.export(free.sel(energy=slice(None, 70.0)).rename(name), root / f"{name}_short.msa")
        with_nan = free.copy()
        with_nan[100] = np.nan
        io.save(with_nan.rename(name), root / f"{name}_nan.zarr")
    return root, ds


def _error_line(result):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    assert "the data" not in lines[0]  # a reference's problem is never blamed on "the data"
    return lines[0]


def _lithium(run_cli, si, rich, poor, co3o4, out, *options):
    return run_cli("eels", "lithium", si, "--li-rich", rich, "--li-poor", poor, "--co-extra", co3o4,
                   "--background", "40:52", *options, "--out", out)


def test_background_free_references_of_their_own_range_meet_the_target(run_cli, files, tmp_path):
    """The issue's target: MAE <= 0.02 of the Li fraction, with only the windows given
    (--reference-background at its default, auto), and the summary says auto chose none."""
    root, ds = files
    refs = [root / f"{n}.msa" for n in PHASES.values()]
    result = _lithium(run_cli, root / "si.zarr", *refs, tmp_path / "o", "--fit-window", "54:90")
    assert result.returncode == 0, result.stderr
    res = io.open_dataset(tmp_path / "o" / "result.zarr")
    mae = float(np.nanmean(np.abs(res["li_fraction"].values - ds["li_fraction_true"].values)))
    assert mae <= 0.02
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["reference_background_mode"] == "auto"
    decided = summary["reference_background"]
    assert list(decided) == ["li_rich", "li_poor", "co_extra1"]
    for name, path in zip(decided, refs):
        assert decided[name]["file"] == str(path) and decided[name]["decision"] == "none"
        assert decided[name]["covers_eV"] == [53.0, 99.0] and decided[name]["dispersion_eV"] == pytest.approx(0.1)
        assert "not the background window 40-52 eV" in decided[name]["why"]
    assert summary["fit_window_used_eV"] == [54.0, 90.0] and summary["masked_pixels"] == 0
    assert json.loads(res.attrs["reference_background"]) == decided


def test_raw_references_are_fitted_by_auto_as_before(run_cli, files, tmp_path):
    root, ds = files
    si = root / "si.zarr"
    refs = [f"{si}:ref_{p}" for p in PHASES]
    maps = {}
    for mode in ("auto", "fit"):
        out = tmp_path / mode
        assert _lithium(run_cli, si, *refs, out, "--fit-window", "52:90", "--reference-background",
                        mode).returncode == 0
        maps[mode] = io.open_dataset(out / "result.zarr")["li_fraction"].values
        summary = json.loads((out / "summary.json").read_text())
        assert [v["decision"] for v in summary["reference_background"].values()] == ["fit"] * 3
        assert summary["reference_background"]["li_rich"]["file"] == refs[0]
        if mode == "auto":
            assert "positive and decays" in summary["reference_background"]["li_poor"]["why"]
    np.testing.assert_array_equal(maps["auto"], maps["fit"])
    assert float(np.nanmean(np.abs(maps["auto"] - ds["li_fraction_true"].values))) <= 0.02


def test_the_default_fit_window_is_what_every_reference_covers_and_says_so(run_cli, files, tmp_path):
    root, ds = files
    result = _lithium(run_cli, root / "si.zarr", *[root / f"{n}.msa" for n in PHASES.values()], tmp_path / "o")
    assert result.returncode == 0, result.stderr
    assert "the fit window defaults to 53-93.75 eV" in result.stderr and str(root / "rich.msa") in result.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["fit_window_used_eV"] == [53.0, 93.75]
    li = io.open_dataset(tmp_path / "o" / "result.zarr")["li_fraction"].values
    assert float(np.nanmean(np.abs(li - ds["li_fraction_true"].values))) <= 0.02


def test_a_reference_that_does_not_cover_the_fit_window_is_named_with_its_file(run_cli, files, tmp_path):
    root, _ = files
    poor = root / "poor_short.msa"
    line = _error_line(_lithium(run_cli, root / "si.zarr", root / "rich.msa", poor, root / "co3o4.msa",
                                tmp_path / "o", "--fit-window", "54:90"))
    assert line.startswith(f"error: reference li_poor ({poor}) covers 53-70 eV but the fit window of the "
                           f"spectrum image ({root / 'si.zarr'}) needs 54-90 eV")
    assert not (tmp_path / "o").exists()


def test_fit_on_background_free_references_is_refused_with_what_to_do(run_cli, files, tmp_path):
    root, ds = files
    si = root / "si.zarr"
    # cut above the window: it cannot be fitted there
    line = _error_line(_lithium(run_cli, si, root / "rich.msa", root / "poor.msa", root / "co3o4.msa",
                                tmp_path / "o", "--fit-window", "54:90", "--reference-background", "fit"))
    assert line.startswith(f"error: reference li_rich ({root / 'rich.msa'}) covers 53-99 eV but the "
                           "background window 40-52 eV needs it")
    assert "--reference-background none" in line
    # covering the window but background-free: the fit fails (was NaN, "reference holds NaN")
    free = subtract_powerlaw(ds["ref_coo2"], (40.0, 52.0))["signal"].rename("poor")
    io.save(free, tmp_path / "poor_free.zarr")
    line = _error_line(_lithium(run_cli, si, f"{si}:ref_licoo2", tmp_path / "poor_free.zarr", f"{si}:ref_co3o4",
                                tmp_path / "o", "--fit-window", "52:90", "--reference-background", "fit"))
    assert line.startswith(f"error: reference li_poor ({tmp_path / 'poor_free.zarr'}): the power-law background "
                           "fit in 40-52 eV failed")
    assert "--reference-background none" in line
    assert not (tmp_path / "o").exists()


def test_every_message_names_the_input_it_is_about(run_cli, files, tmp_path):
    root, _ = files
    si = root / "si.zarr"
    refs = [root / f"{n}.msa" for n in PHASES.values()]
    line = _error_line(_lithium(run_cli, si, refs[0], refs[1], root / "co3o4_nan.zarr", tmp_path / "o",
                                "--fit-window", "54:90"))
    assert line == f"error: reference co_extra1 ({root / 'co3o4_nan.zarr'}) holds 1 NaN/inf value(s); clean or " \
                   "interpolate it first"
    line = _error_line(_lithium(run_cli, si, *refs, tmp_path / "o", "--fit-window", "54:120"))
    assert f"the fit window 54-120 eV lies outside the spectrum image ({si}), which covers 29.875-93.875 eV" in line
    line = _error_line(run_cli("eels", "lithium", si, "--li-rich", refs[0], "--li-poor", refs[1],
                               "--background", "20:28", "--out", tmp_path / "o"))
    assert f"the background window 20-28 eV lies outside the spectrum image ({si})" in line
    line = _error_line(_lithium(run_cli, si, *refs, tmp_path / "o", "--reference-background", "bogus"))
    assert "--reference-background must be one of 'auto', 'fit', 'none', got 'bogus'" in line
    line = _error_line(run_cli("eels", "lithium", si, "--li-rich", f"{si}:ref_licoo2", "--li-poor", refs[1],
                               "--method", "sasb", "--window-a", "52.5:60", "--window-b", "64:85", "--out", tmp_path / "o"))
    assert f"reference li_poor ({refs[1]}) covers 53-99 eV but the S_A window 52.5-60 eV needs it" in line
    assert not (tmp_path / "o").exists()

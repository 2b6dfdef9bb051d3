"""Every result every command writes opens in `ionscope info`, `ionscope convert` and plain
`xarray.open_zarr`, without error or warning (issue 12)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import xarray as xr

from ionscope import io
from ionscope.data import signal
from ionscope.simulate import simulate

HOLO = dict(ny=96, nx=96, pixel_nm=0.5, vacuum_height_nm=12.0, interface_position_nm=24.0)


@pytest.fixture(scope="module")
def results(tmp_path_factory, run_cli):
    """Run every command that writes a result once, on small twins; name -> result folder."""
    root = tmp_path_factory.mktemp("results")
    io.save(simulate("holography", seed=1, **HOLO), root / "h.zarr")
    io.save(simulate("eels_licoo2", seed=2, li_params={"ny": 24, "nx": 16}, frames=[0, 60], dose=1e8),
            root / "e.zarr")
    io.save(simulate("eels_sr", seed=3), root / "sr.zarr")
    maps = signal(np.random.default_rng(0).poisson(20, (4, 32, 32)) / 20.0, ("time", "y", "x"), name="li",
                  units="1", coords={"time": 60.0, "y": 2.0, "x": 2.0})
    io.save(maps, root / "maps.zarr")
    fine = signal(np.random.default_rng(1).random((2, 32, 32)), ("time", "y", "x"), name="hr", units="1",
                  coords={"time": 60.0, "y": 1.0, "x": 1.0})
    io.save(fine, root / "fine.zarr")
    (root / "v.csv").write_text("position_nm,value,sigma\n" + "".join(
        f"{0.5 * i},{1.3 * (1 - math.erf((0.5 * i - 20) / 3)) / 2 + 0.002 * math.sin(7 * i)},0.002\n"
        for i in range(120)))
    from ionscope.simulate.composite_cathode_params import CompositeCathodeParams
    from ionscope.simulate.composite_cathode_sims import simulate_sims

    tof = simulate_sims(CompositeCathodeParams(ny=48, nx=48, pixel_nm=20, charge_frames=1, rest_frames=0, sims_ny=16,
                                               sims_nx=16, sims_pixel_nm=50, sims_stage_shift_nm=40, sims_states=2))
    for k in range(2):
        io.write_imzml(root / f"s{k}.imzML", tof["peak_mass"].values[k], tof["counts"].values[k], pixel_size_um=0.05)
    from test_echem_cli import write_csv_log
    from test_echem_kernels import scaled_cycles

    write_csv_log(scaled_cycles(2.0, 0.5, cycles=2), root / "before.csv")
    write_csv_log(scaled_cycles(2.2, 0.5, cycles=2), root / "after.csv")
    from ionscope.simulate.composite_cathode_files import write_scan_files

    (root / "corrcell").mkdir()
    corr = dict(ny=128, nx=128, pixel_nm=20, charge_frames=1, rest_frames=0, sims_states=2)
    written = write_scan_files(simulate("composite_cathode", **corr), root / "corrcell", sims=True)
    for args in (("kpfm", "process", *[p for p in written if p.suffix == ".sxm"], "--out", root / "corrk"),
                 ("sims", "lithium", *[p for p in written if p.suffix == ".imzML"], "--pulses", "1920", "--out",
                  root / "corrs")):
        assert run_cli(*args).returncode == 0
    e = root / "e.zarr"
    commands = {
        "holo reconstruct": ("holo", "reconstruct", f"{root}/h.zarr:hologram", "--reference", f"{root}/h.zarr:reference"),
        "holo potential": ("holo", "potential", root / "holo reconstruct", "--kv", "300", "--thickness", "50",
                           "--vacuum", "2:20,4:90", "--leakage"),
        "holo profile": ("holo", "profile", root / "holo potential", "--from", "60,8", "--to", "60,88"),
        "eels lithium": ("eels", "lithium", e, "--li-rich", f"{e}:ref_licoo2", "--li-poor", f"{e}:ref_coo2",
                         "--co-extra", f"{e}:ref_co3o4", "--fit-window", "52:90"),
        "eels nmf": ("eels", "nmf", e, "--components", "2", "--window", "52:90", "--background", "40:52"),
        "eels profile": ("eels", "profile", root / "sr.zarr", "--window", "55:62", "--background", "48:54"),
        "denoise": ("denoise", root / "maps.zarr", "--method", "gaussian"),
        "superres": ("superres", root / "maps.zarr", "--train", root / "fine.zarr", "--factor", "2",
                     "--atoms", "32", "--iterations", "2"),
        "spacecharge profile": ("spacecharge", "profile", "--psi0", "1", "--theta", "0.9", "--eps-r", "50",
                                "--c0", "6e27"),
        "spacecharge bias": ("spacecharge", "bias", "--bias", "1", "--thickness", "50", "--theta", "0.9",
                             "--eps-r", "50", "--c0", "6e27"),
        "spacecharge fit": ("spacecharge", "fit", root / "v.csv", "--fix", "theta=0.99", "--side", "right"),
        "sims lithium": ("sims", "lithium", root / "s0.imzML", root / "s1.imzML", "--pulses", "1920"),
        "echem summary": ("echem", "summary", root / "before.csv", "--mass", "2", "--area", "0.5"),
        "echem compare": ("echem", "compare", root / "before.csv", root / "after.csv"),
        "timeline": ("timeline", root / "maps.zarr", "--cycler", root / "cycler.csv", "--start", "2024-05-01T10:00:00"),
        "correlate": ("correlate", root / "corrk", root / "corrs"),
        "motion": ("motion", root / "maps.zarr"),
    }
    (root / "cycler.csv").write_text("time_s,voltage_V,current_A\n" + "".join(
        f"{t},{3.0 + t / 600},{1e-3 if t < 150 else 0}\n" for t in range(0, 301, 10)))
    done = {}
    for name, args in commands.items():
        res = run_cli(*args, "--out", root / name)
        assert res.returncode == 0, (name, res.stderr)
        done[name] = root / name
    # ionscope run over a series of files: the frames' results stacked along time
    import hyperspy.api as hs

    (root / "frames").mkdir()
    for k in range(2):
        frame = hs.signals.Signal2D(np.random.default_rng(k).random((16, 16)).astype("float32"))
        frame.metadata.General.date, frame.metadata.General.time = "2026-03-01", f"10:0{k}:00"
        frame.save(root / "frames" / f"f{k}.hspy")
    (root / "exp.toml").write_text('[experiment]\nname = "open"\n[[inputs]]\nname = "frames"\npath = "frames/*.hspy"\n'
                                   '[[steps]]\nname = "clean"\ncommand = "denoise"\ninput = "frames"\n'
                                   '[steps.options]\nmethod = "gaussian"\n')
    res = run_cli("run", root / "exp.toml", "--out", root / "run")
    assert res.returncode == 0, res.stderr
    done["run"] = root / "run" / "clean"
    return done


COMMANDS = ["holo reconstruct", "holo potential", "holo profile", "eels lithium", "eels nmf", "eels profile",
            "denoise", "superres", "spacecharge profile", "spacecharge bias", "spacecharge fit", "sims lithium",
            "echem summary", "echem compare", "timeline", "correlate", "motion", "run"]


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_every_result_opens_everywhere_without_a_warning(results, run_cli, tmp_path, command):
    folder = results[command]
    info = run_cli("info", folder)  # the result folder itself, as the user has it
    assert info.returncode == 0 and not info.stderr, info.stderr
    assert "variable" in info.stdout
    converted = run_cli("convert", folder / "result.zarr", "--out", tmp_path / "copy.zarr")
    assert converted.returncode == 0 and not converted.stderr, converted.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(folder / "result.zarr")
        ds.load()
    assert ds.attrs.get("primary") in ds.data_vars

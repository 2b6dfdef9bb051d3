"""The careless-input probe (issue 12): every command x every careless input keeps the promise.

For every command that reads an input or writes an output, a minimal valid invocation on tiny
fixtures (checked to succeed by ``test_the_valid_invocation_works``) is turned into careless
variants, one category at a time:

======================  =======================================================================
category                what the variant does
======================  =======================================================================
missing                 an input path that does not exist, ``FILE:VARIABLE`` without that variable
empty                   a 0-byte file with the input's extension, an empty ``.zarr`` folder, an
                        empty result folder, a CSV with only its header
truncated               a real valid input cut in half (HDF5 ``.hspy``, ``.npy``, a Zarr store's
                        metadata, a CSV cut inside a row: one cut at a line end is a complete
                        shorter table, which nothing can tell from a real one)
garbage                 random bytes with the right extension (a file, or a store's metadata)
wrong-dims              a 1-D line where maps or images are needed, spectra without their energy
                        axis, a 2-D map where a 1-D spectrum is, a CSV without its value column,
                        ``--dims`` that do not fit the file
nan                     a NaN in the data
absurd                  each numeric option at an absurd value (negative, zero, inf, nan, huge)
                        and each choice option at an unknown one
unwritable              ``--out`` under an existing regular file, ``--out`` that is a file (for
                        output folders), in a folder without write permission (not as root:
                        root may write anywhere), in ``/sys`` (refused by the kernel even to root)
out-is-input            ``--out`` that is, or would write into, an input - with and without
                        ``--overwrite``, and spelled through ``..`` or a symbolic link
======================  =======================================================================

and every variant must end with exit status 2, exactly one line ``error: ...`` on stderr, no
traceback and no "internal error", nothing new written (the file tree - names, sizes, mtimes -
of the test's folder, of every input given and of the top of the inputs' folder is unchanged: no
``--out``, no empty output folder, no temporary left) and every input byte-identical (sha256).

Combinations that are not generated, and why:

- ``simulate``, ``demo``, ``spacecharge profile`` and ``spacecharge bias`` read no input: only
  ``absurd`` and ``unwritable`` apply (and ``out-is-input`` has no input to be).
- ``info`` writes nothing: no ``unwritable`` or ``out-is-input``.
- ``nan`` is not generated for ``timeline``: the cell's state at a frame does not depend on the
  frame's values.
- ``nan`` is not generated for ``info`` and ``convert``: describing or converting a file with NaN
  is right (ionscope's own results mark masked pixels with NaN), nor for the ``holo potential``
  and ``holo profile`` RESULT inputs, whose maps carry NaN where the reconstruction masked pixels.
- ``wrong-dims`` of ``info`` and ``convert``: any dims are fine to describe or copy to Zarr, so the
  variants are ``--dims`` that do not fit the file and a ``.msa`` output (one spectrum) of maps.
- A Zarr chunk cut in half is not here: detecting it is the store checksums' job
  (``io.save`` / ``_read_zarr``), tested with them.

A new command joins by adding one :class:`Command` to :data:`COMMANDS`;
``test_every_command_is_probed`` fails until it does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from test_careless_input import _error_line

from ionscope import io
from ionscope.data import signal

GARBAGE = np.random.default_rng(12).integers(0, 256, 4096, dtype=np.uint8).tobytes()


# --------------------------------------------------------------------------- the command table


@dataclass(frozen=True)
class Slot:
    """An input of a command: ``spec`` as the valid invocation gives it (``{inp}`` is the
    fixtures' folder), and what kind of file it is (``store``: anything io.load reads, shown
    as a .zarr store; ``csv``; ``result``: a command's result folder; ``scan``: a scanning-probe
    file such as a Nanonis .sxm; ``imzml``: an imzML file and its .ibd)."""

    spec: str
    kind: str = "store"


@dataclass(frozen=True)
class Command:
    """One command: its valid invocation (``{slot}`` placeholders for the inputs, ``{out}`` for
    the output), its inputs, what its ``--out`` is, and its careless parameters."""

    name: str
    argv: tuple[str, ...]
    slots: dict[str, Slot] = field(default_factory=dict)
    out: str | None = "dir"  # "dir" (a result folder), a file suffix such as ".zarr", or None
    absurd: tuple[tuple[str, ...], ...] = ()
    wrong_dims: tuple[tuple[str, ...], ...] = ()  # further wrong-dims variants: whole argvs
    nan: bool = True  # a NaN in any input must be refused
    run_valid: bool = True  # the valid invocation is run by test_the_valid_invocation_works


def _num(option, *values):
    return tuple((option, v) for v in values)


NEG_ZERO_INF_NAN = ("-1", "0", "inf", "nan")
COUNT = ("-1", "0", "1000000000")
SEED = ("-1", str(2**70))
SC_MATERIAL = (  # the material options shared by spacecharge profile and bias
    *_num("--theta", "0", "1", "-0.5", "nan", "inf"), *_num("--eps-r", *NEG_ZERO_INF_NAN, "1e12"),
    *_num("--c0", *NEG_ZERO_INF_NAN, "1e40"), *_num("--temperature", *NEG_ZERO_INF_NAN, "1e9"),
    *_num("--stern", "-1", "inf", "nan", "1e9"), *_num("--stern-eps-r", *NEG_ZERO_INF_NAN),
    *_num("--defect", "nan:0.5:-1", "1e25:2:-1", "1e25:0.5:0", "-1e25:0.5:-1", "1e25:0.5:1e9"),
)
SC = ("--theta", "0.99", "--eps-r", "50", "--c0", "6e27")

COMMANDS: tuple[Command, ...] = (
    Command(
        "run", ("run", "{main}", "--out", "{out}"), {"main": Slot("{inp}/exp.toml", "toml")},
    ),
    Command(  # the watched folder is the fixtures' folder, where the live input's store already is
        "watch", ("watch", "{inp}", "--config", "{main}", "--input", "maps", "--idle-exit", "0.4", "--out", "{out}"),
        {"main": Slot("{inp}/exp.toml", "toml")},
        absurd=(("--settle", "0"), ("--idle-exit", "-1"), ("--serve", "70000"), ("--jobs", "0"), ("--input", "nope")),
    ),
    Command(
        "info", ("info", "{main}"), {"main": Slot("{inp}/series.zarr")}, out=None, nan=False,
        absurd=(("--dims", "y,y,x"), ("--dims", ",,,")),
        wrong_dims=(("info", "{inp}/raw3d.npy", "--dims", "y,x"), ("info", "{inp}/raw3d.npy", "--dims", "time,y,x,energy")),
    ),
    Command(
        "convert", ("convert", "{main}", "--out", "{out}"), {"main": Slot("{inp}/series.zarr")}, out=".zarr", nan=False,
        absurd=(("--variable", "nope"), ("--dims", "y,y,x")),
        wrong_dims=(("convert", "{inp}/series.zarr", "--out", "{tmp}/out.msa"),
                    ("convert", "{inp}/raw3d.npy", "--dims", "y,x", "--out", "{out}")),
    ),
    Command(
        "movie", ("movie", "{main}", "--fps", "5", "--out", "{out}"), {"main": Slot("{inp}/series.zarr")}, out=".gif",
        absurd=(*_num("--fps", *NEG_ZERO_INF_NAN, "1e9"), ("--variable", "nope")),
    ),
    Command(
        "denoise", ("denoise", "{main}", "--method", "gaussian", "--out", "{out}"), {"main": Slot("{inp}/series.zarr")},
        absurd=(
            ("--method", "bogus"), *_num("--patch", *COUNT), *_num("--atoms", *COUNT), *_num("--sparsity", *COUNT),
            *_num("--temporal", *COUNT), ("--noise", "bogus"), *_num("--dose", *NEG_ZERO_INF_NAN), *_num("--seed", *SEED),
            # the same parameters reach the sparse coder itself
            ("--method", "sparse", "--patch", "1000000000"), ("--method", "sparse", "--atoms", "1000000000"),
            ("--method", "sparse", "--sparsity", "1000000000"), ("--method", "sparse3d", "--temporal", "1000000000"),
        ),
    ),
    Command(
        "superres",
        ("superres", "{main}", "--train", "{train}", "--factor", "2", "--atoms", "16", "--train-iterations", "1",
         "--iterations", "1", "--out", "{out}"),
        {"main": Slot("{inp}/lr.zarr"), "train": Slot("{inp}/train.zarr")},
        absurd=(
            *_num("--factor", "-2", "0", "1", "4", "1000000000"), *_num("--patch", *COUNT), *_num("--atoms", *COUNT),
            *_num("--sparsity", *COUNT), *_num("--iterations", "-1", "1000000000"),
            *_num("--train-iterations", "-1", "1000000000"), *_num("--seed", *SEED),
        ),
    ),
    Command(
        "eels lithium",
        ("eels", "lithium", "{main}", "--li-rich", "{rich}", "--li-poor", "{poor}", "--co-extra",
         "{inp}/eels.zarr:ref_co3o4", "--fit-window", "52:90", "--out", "{out}"),
        {"main": Slot("{inp}/eels.zarr"), "rich": Slot("{inp}/eels.zarr:ref_licoo2"),
         "poor": Slot("{inp}/eels.zarr:ref_coo2")},
        absurd=(
            ("--background", "52:40"), ("--background", "nan:50"), ("--background", "-inf:inf"),
            ("--background", "1e9:2e9"), ("--fit-window", "90:52"), ("--fit-window", "1e9:2e9"),
            ("--fit-window", "-inf:inf"), ("--method", "bogus"), ("--background-method", "bogus"),
            ("--reference-background", "bogus"),
            ("--method", "sasb", "--window-a", "1e9:2e9", "--window-b", "64:85"),
            ("--method", "sasb", "--window-a", "54:60", "--window-b", "85:64"),
        ),
    ),
    Command(
        "eels nmf", ("eels", "nmf", "{main}", "--components", "2", "--window", "52:90", "--out", "{out}"),
        {"main": Slot("{inp}/eels.zarr")},
        absurd=(
            *_num("--components", *COUNT), *_num("--orthogonality", "-1", "inf", "nan", "1e300"),
            ("--window", "90:52"), ("--window", "1e9:2e9"), ("--background", "52:40"), ("--background", "1e9:2e9"),
            *_num("--seed", *SEED),
        ),
    ),
    Command(
        "eels profile", ("eels", "profile", "{main}", "--window", "55:62", "--background", "48:54", "--out", "{out}"),
        {"main": Slot("{inp}/sr.zarr")},
        absurd=(("--window", "62:55"), ("--window", "1e9:2e9"), ("--window", "nan:62"), ("--background", "54:48"),
                ("--background", "1e9:2e9"), ("--model", "bogus")),
    ),
    Command(
        "spacecharge profile", ("spacecharge", "profile", "--psi0", "-1.3", *SC, "--points", "200", "--out", "{out}"),
        absurd=(*_num("--psi0", "nan", "inf", "1000"), *_num("--length", *NEG_ZERO_INF_NAN, "1e12"),
                *_num("--points", *COUNT, "2"), *SC_MATERIAL),
    ),
    Command(
        "spacecharge bias",
        ("spacecharge", "bias", "--bias", "2", "--thickness", "100", *SC, "--points", "200", "--out", "{out}"),
        absurd=(*_num("--bias", "nan", "inf", "1e6"), *_num("--thickness", *NEG_ZERO_INF_NAN, "1e12"),
                *_num("--points", *COUNT, "3"), *SC_MATERIAL),
    ),
    Command(
        "spacecharge fit", ("spacecharge", "fit", "{main}", "--li", "{li}", "--side", "right", "--out", "{out}"),
        {"main": Slot("{inp}/v.csv", "csv"), "li": Slot("{inp}/li.csv", "csv")},
        absurd=(
            *_num("--eps-r", *NEG_ZERO_INF_NAN, "1e12"), *_num("--c0", *NEG_ZERO_INF_NAN, "1e40"),
            *_num("--theta", "0", "1", "nan", "2"), *_num("--temperature", *NEG_ZERO_INF_NAN, "1e9"), ("--side", "bogus"), ("--units", "bogus"),
            *_num("--step", "nan", "inf", "abc"), *_num("--blur", "-1", "nan", "inf", "lowpass:-1", "lowpass:nan", "bogus"),
            *_num("--amplitude-ratio", *NEG_ZERO_INF_NAN), ("--noise", "bogus"), ("--free", "bogus"),
            *_num("--fix", "theta=nan", "theta=2", "psi0_V=inf", "bogus=1"), *_num("--li-electrode-level", "nan", "inf"),
            ("--li-mode", "bogus"),
        ),
    ),
    Command(
        "holo reconstruct", ("holo", "reconstruct", "{main}", "--reference", "{ref}", "--out", "{out}"),
        {"main": Slot("{inp}/holo.zarr:hologram"), "ref": Slot("{inp}/holo.zarr:reference")},
        absurd=(
            ("--sideband", "1000,1000"), ("--sideband", "nan,nan"), ("--sideband", "-1e9,5"),
            *_num("--aperture", *NEG_ZERO_INF_NAN, "1e9"), ("--aperture-unit", "bogus"),
            *_num("--mtf", "lorentzian:0", "lorentzian:-1", "lorentzian:nan", "lorentzian:inf"),
        ),
    ),
    Command(
        "holo phase-shifting", ("holo", "phase-shifting", "{main}", "--reference", "{ref}", "--out", "{out}"),
        {"main": Slot("{inp}/ps.zarr:stack"), "ref": Slot("{inp}/ps.zarr:reference_stack")},
        absurd=(("--vacuum", "1000:2000,0:10"), ("--vacuum", "-50:-40,0:10"), ("--vacuum", "5:5,0:10"),
                ("--vacuum", "bogus")),
    ),
    Command(
        "holo potential", ("holo", "potential", "{main}", "--kv", "300", "--thickness", "50", "--out", "{out}"),
        {"main": Slot("{inp}/rec", "result")}, nan=False,
        absurd=(
            *_num("--kv", *NEG_ZERO_INF_NAN, "1e9"), *_num("--thickness", *NEG_ZERO_INF_NAN, "1e12"),
            ("--thickness", None, "--mip", "-1"), ("--thickness", None, "--mip", "nan"), ("--thickness", None, "--mip", "0"),
            ("--thickness", None, "--mip", "1e9"),
            ("--leakage", "--leakage-degree", "-1"), ("--leakage", "--leakage-degree", "0"),
            ("--leakage", "--leakage-degree", "1000000000"), ("--leakage", "--leakage-erode", "-1"),
            ("--leakage", "--leakage-erode", "1000000000"), ("--vacuum", "1000:2000,0:10"), ("--vacuum", "bogus"),
        ),
    ),
    Command(
        "holo profile",
        ("holo", "profile", "{main}", "--from", "40,4", "--to", "40,60", "--width", "8", "--blur", "none", "--out", "{out}"),
        {"main": Slot("{inp}/pot", "result")}, nan=False,
        absurd=(
            *_num("--width", *COUNT), ("--model", "bogus"), ("--side", "bogus"),
            *_num("--blur", "-1", "nan", "inf", "bogus", "lowpass:-1"), *_num("--eps-r", *NEG_ZERO_INF_NAN),
            ("--from", "1e9,1e9"), ("--from", "nan,nan"), ("--to", "40,4"), ("--variable", "nope"),
            ("--from", None, "--to", None, "--half-length", "0"), ("--from", None, "--to", None, "--half-length", "-1"),
            ("--from", None, "--to", None, "--half-length", "nan"), ("--from", None, "--to", None, "--half-length", "1e12"),
        ),
    ),
    Command(
        "kpfm process", ("kpfm", "process", "{main}", "{second}", "--cycler", "{cycler}", "--out", "{out}"),
        {"main": Slot("{inp}/cell/frame_000.sxm", "scan"), "second": Slot("{inp}/cell/frame_001.sxm", "scan"),
         "cycler": Slot("{inp}/cell/cycler.csv", "csv")},
        absurd=(
            ("--channel", "nope"), ("--direction", "bogus"), ("--reference", "1000:2000,0:10"),
            ("--reference", "5:5,0:10"), ("--reference", "bogus"), *_num("--psf", "-1", "0", "nan", "inf", "bogus"),
            ("--start", "bogus"), ("--start", "1e9"),
        ),
    ),
    Command(
        "timeline", ("timeline", "{main}", "--cycler", "{cycler}", "--start", "2025-06-02T10:00:00", "--out", "{out}"),
        {"main": Slot("{inp}/series.zarr"), "cycler": Slot("{inp}/cell/cycler.csv", "csv")}, nan=False,
        absurd=(("--start", "bogus"), ("--start", "1e9"),
                ("--start", "2025-06-02T10:00:00+09:00", "--timezone", "Mars/Olympus"), ("--timezone", "+99:00"),
                ("--dims", "y,y,x")),
    ),
    Command(
        "kpfm particles", ("kpfm", "particles", "{main}", "--out", "{out}"), {"main": Slot("{inp}/kproc", "result")},
        nan=False, absurd=(*_num("--threshold", *NEG_ZERO_INF_NAN), *_num("--min-area-nm2", "-1", "nan", "inf", "1e30")),
    ),
    Command(
        "kpfm profile", ("kpfm", "profile", "{main}", "--from", "20,2", "--to", "20,40", "--width", "4", "--out", "{out}"),
        {"main": Slot("{inp}/kproc", "result")}, nan=False,
        absurd=(*_num("--width", *COUNT), ("--from", "1e9,1e9"), ("--from", "nan,nan"), ("--from", "1,2,3"),
                ("--to", "20,2")),
    ),
    Command(
        "sims lithium", ("sims", "lithium", "{main}", "{second}", "--pulses", "1920", "--out", "{out}"),
        {"main": Slot("{inp}/tof/s0.imzML", "imzml"), "second": Slot("{inp}/tof/s1.imzML", "imzml")},
        absurd=(
            *_num("--pulses", *NEG_ZERO_INF_NAN, "1.5", "1"), *_num("--window-u", *NEG_ZERO_INF_NAN, "1e9"),
            ("--window-fwhm", "3"), ("--window-fwhm", "-1", "--resolution", "5000"),
            ("--window-fwhm", "3", "--resolution", "nan"), ("--window-fwhm", "1e4", "--resolution", "1"),
            ("--normalise", "bogus"), ("--normalise", "16O"), ("--phases", "bogus"), ("--ions", "Xy"),
            ("--ions", "7Li=-1"), ("--states", "a"), ("--states", "a,a"), *_num("--bin", *COUNT),
        ),
    ),
    Command(
        "echem summary", ("echem", "summary", "{main}", "--out", "{out}"), {"main": Slot("{inp}/echem/before.csv", "csv")},
        absurd=(
            *_num("--mass", *NEG_ZERO_INF_NAN), *_num("--area", *NEG_ZERO_INF_NAN), *_num("--capacity", *NEG_ZERO_INF_NAN),
            *_num("--dqdv-bin", *NEG_ZERO_INF_NAN, "1e-12"), ("--dqdv-smoothing", "bogus"), ("--timezone", "Mars/Olympus"),
            ("--columns", "time=nope,voltage=voltage_V,current=current_A"), ("--columns", "bogus"),
        ),
    ),
    Command(
        "echem compare", ("echem", "compare", "{main}", "{second}", "--out", "{out}"),
        {"main": Slot("{inp}/echem/before.csv", "csv"), "second": Slot("{inp}/echem/after.csv", "csv")},
        absurd=(
            *_num("--tolerance", *NEG_ZERO_INF_NAN, "2"), *_num("--ce-tolerance", *NEG_ZERO_INF_NAN),
            *_num("--voltage-tolerance", *NEG_ZERO_INF_NAN), ("--basis", "bogus"), ("--basis", "areal"),
            ("--basis", "specific"), *_num("--mass-a", *NEG_ZERO_INF_NAN), *_num("--area-b", *NEG_ZERO_INF_NAN),
            ("--timezone", "Mars/Olympus"),
        ),
    ),
    Command(
        "correlate", ("correlate", "{main}", "{second}", "--out", "{out}"),
        {"main": Slot("{inp}/corrk", "result"), "second": Slot("{inp}/corrs", "result")}, nan=False,
        absurd=(*_num("--init-rotation", "nan", "inf", "1e9"), ("--init-shift", "1,2,3"), ("--init-shift", "nan,nan"),
                ("--pairs", "bogus"), ("--pairs", "0:0,99:1"), ("--pairs", "0:0,1:nope"), ("--pairs", "0:0,0:1")),
    ),
    Command(
        "motion", ("motion", "{main}", "--out", "{out}"), {"main": Slot("{inp}/series.zarr")},
        absurd=(("--electrolyte", "bogus"), ("--method", "bogus"), *_num("--window", "-1", "0", "4", "1000000000"),
                *_num("--level", "nan", "inf"), ("--variable", "nope"), ("--dims", "y,y,x"),
                ("--mobility", "{inp}/train.zarr"), ("--boundaries", "{inp}/train.zarr"),
                ("--mobility", "{inp}/series.zarr", "--boundaries", "{inp}/series.zarr")),
    ),
    Command(
        "simulate",
        ("simulate", "licoo2", "--param", "ny=24", "--param", "nx=16", "--param", "layer_thickness_nm=4",
         "--param", "layer_roughness_nm=1", "--out", "{out}"),
        out=".zarr",
        absurd=(
            *_num("--seed", *SEED), ("--param", "ny=-1"), ("--param", "ny=1000000000"), ("--param", "ny=NaN"),
            ("--param", "ny=abc"), ("--param", "bogus=1"), ("--param", "noequals"),
        ),
    ),
    Command(
        "demo", ("demo", "--quick", "--out", "{out}"), out="dir", run_valid=False,  # 20 s: tests/test_*_demo.py run it
        absurd=_num("--seed", *SEED),
    ),
)


# --------------------------------------------------------------------------- fixtures


def _cut(path: Path, target: Path) -> Path:
    data = path.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def _root_metadata(store: Path) -> str:
    """The file holding a Zarr store's root metadata: ``zarr.json`` (format 3) or ``.zgroup``
    (format 2, as zarr 2.x writes it; its consolidated copy is not what ionscope reads)."""
    return next(n for n in ("zarr.json", ".zgroup") if (store / n).exists())


def _store_variants(folder: Path, name: str, source: Path) -> None:
    """The careless files of one store input, beside its valid ``source`` store."""
    da = io.load(source)
    (folder / f"{name}.empty.zarr").write_bytes(b"")
    (folder / f"{name}.emptydir.zarr").mkdir()
    (folder / f"{name}.empty.hspy").write_bytes(b"")
    (folder / f"{name}.garbage.zarr").write_bytes(GARBAGE)
    (folder / f"{name}.garbage.hspy").write_bytes(GARBAGE)
    shutil.copytree(source, folder / f"{name}.garbagemeta.zarr")
    meta = _root_metadata(source)
    (folder / f"{name}.garbagemeta.zarr" / meta).write_bytes(GARBAGE)
    shutil.copytree(source, folder / f"{name}.cutmeta.zarr")
    _cut(source / meta, folder / f"{name}.cutmeta.zarr" / meta)
    full = folder / f".{name}.full.npy"
    np.save(full, np.asarray(da.values))
    _cut(full, folder / f"{name}.cut.npy")
    full.unlink()
    full = folder / f".{name}.full.hspy"
    io.export(da, full)
    _cut(full, folder / f"{name}.cut.hspy")
    full.unlink()
    if da.ndim == 1:  # a spectrum: a map instead
        wrong = signal(np.ones((4, 5)), ("y", "x"), name=str(da.name), units="counts", coords={"y": 1.0, "x": 1.0})
    elif "energy" in da.dims:  # spectra: the same without the energy axis
        wrong = da.isel(energy=0, drop=True)
    else:  # maps or images: one line of them
        wrong = da.isel({d: 0 for d in da.dims[:-1]})
    io.save(wrong, folder / f"{name}.wrongdims.zarr")
    values = np.array(da.values, dtype=np.result_type(da.dtype, np.float32))
    values[tuple(n // 2 for n in da.shape)] = np.nan
    io.save(da.copy(data=values), folder / f"{name}.nan.zarr")


def _scan_variants(folder: Path, name: str, source: Path) -> None:
    """The careless files of a scanning-probe input (a Nanonis .sxm)."""
    ext = source.suffix
    (folder / f"{name}.empty{ext}").write_bytes(b"")
    (folder / f"{name}.garbage{ext}").write_bytes(GARBAGE)
    _cut(source, folder / f"{name}.cut{ext}")
    frame = io.open_dataset(source)
    line = signal(np.asarray(frame["KPFM_forward"].values[0]), ("x",), name="KPFM_forward", units="V")
    io.save(line, folder / f"{name}.wrongdims.zarr")  # one scan line, no image
    nan = np.full(frame["KPFM_forward"].shape, np.nan, dtype=np.float32)  # an all-NaN frame
    io.write_sxm(folder / f"{name}.nan{ext}", {"KPFM": (nan, nan), "Z": (frame["Z_forward"].values, None)},
                 range_nm=frame.attrs["scan_range_nm"], start_time=frame.attrs["start_time"],
                 scan_direction=frame.attrs["scan_direction"], acq_time_s=frame.attrs["acquisition_time_s"],
                 units={"KPFM": "V", "Z": "nm"})


def _imzml_variants(folder: Path, name: str, source: Path) -> None:
    """The careless files of an imzML input (the .imzML and its .ibd)."""
    ibd = source.with_suffix(".ibd")

    def pair(kind: str, xml: bytes | None = None, binary: bytes | None = None) -> None:
        (folder / f"{name}.{kind}.imzML").write_bytes(source.read_bytes() if xml is None else xml)
        (folder / f"{name}.{kind}.ibd").write_bytes(ibd.read_bytes() if binary is None else binary)

    text = source.read_bytes()
    pair("empty", b"")
    pair("emptyibd", None, b"")
    pair("cut", text[: len(text) // 2])
    pair("cutibd", None, ibd.read_bytes()[: ibd.stat().st_size // 2])
    pair("garbage", GARBAGE)
    pair("garbageibd", None, GARBAGE)
    pair("otheruuid", None, bytes(16) + ibd.read_bytes()[16:])  # the .ibd of another acquisition
    (folder / f"{name}.noibd.imzML").write_bytes(text)  # its .ibd missing
    ds = io.open_dataset(source)
    line = signal(np.asarray(ds["counts"].values[0, :, 0], dtype=np.float64), ("x",), name="counts", units="counts")
    io.save(line, folder / f"{name}.wrongdims.zarr")  # one line of one ion, no map of spectra
    nan = ds["counts"].astype(np.float64)
    nan.values[2, 3, 0] = np.nan
    io.save(nan.to_dataset(name="counts"), folder / f"{name}.nan.zarr")


def _result_variants(folder: Path, name: str, source: Path) -> None:
    ds = io.open_dataset(source)
    (folder / f"{name}.empty").mkdir()
    (folder / f"{name}.emptystore" / "result.zarr").mkdir(parents=True)
    shutil.copytree(source, folder / f"{name}.garbage")
    meta = _root_metadata(source / "result.zarr")
    (folder / f"{name}.garbage" / "result.zarr" / meta).write_bytes(GARBAGE)
    shutil.copytree(source, folder / f"{name}.cut")
    _cut(source / "result.zarr" / meta, folder / f"{name}.cut" / "result.zarr" / meta)
    (folder / f"{name}.wrongdims").mkdir()
    row = {d: 0 for d in ("y",) if d in ds.dims}
    io.save(ds.isel(row), folder / f"{name}.wrongdims" / "result.zarr")


def _csv_variants(folder: Path, name: str, source: Path) -> None:
    text = source.read_text()
    header, *rows = text.splitlines()
    (folder / f"{name}.empty.csv").write_bytes(b"")
    (folder / f"{name}.header.csv").write_text(header + "\n")
    (folder / f"{name}.garbage.csv").write_bytes(GARBAGE)
    (folder / f"{name}.garbagetext.csv").write_text("hello,world\nfoo,bar\nbaz,qux\n")
    # cut in the middle of a row: a CSV cut at a line end is a complete shorter table
    folder.joinpath(f"{name}.cut.csv").write_text(text[: text.index(",", len(text) // 2) + 3])
    (folder / f"{name}.wrongdims.csv").write_text("position_nm\n" + "".join(r.split(",")[0] + "\n" for r in rows))
    nan_rows = [r.split(",") for r in rows]
    nan_rows[len(rows) // 2][1] = "nan"
    (folder / f"{name}.nan.csv").write_text(header + "\n" + "".join(",".join(r) + "\n" for r in nan_rows))


EXPERIMENT = """[experiment]
name = "probe"

[[inputs]]
name = "maps"
path = "{data}"

[[steps]]
name = "smooth"
command = "denoise"
input = "maps"
[steps.options]
method = "gaussian"
"""


def _toml_variants(folder: Path, name: str, source: Path) -> None:
    """An experiment file's careless variants: 0 bytes, random bytes, cut in half, and valid
    files whose input is a line instead of maps (wrong-dims) or holds a NaN."""
    text = source.read_text()
    (folder / f"{name}.empty.toml").write_bytes(b"")
    (folder / f"{name}.garbage.toml").write_bytes(GARBAGE)
    (folder / f"{name}.cut.toml").write_text(text[: len(text) // 2])
    (folder / f"{name}.wrongdims.toml").write_text(EXPERIMENT.format(data="series.wrongdims.zarr"))
    (folder / f"{name}.nan.toml").write_text(EXPERIMENT.format(data="series.nan.zarr"))


def _spec_path(spec: str, inp: Path) -> Path:
    """The file an input spec names (``FILE:VARIABLE`` -> ``FILE``)."""
    text = spec.replace("{inp}", str(inp))
    return Path(text.rsplit(":", 1)[0]) if ":" in Path(text).name else Path(text)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, run_cli):
    """The valid inputs of every command (tiny), and per input its careless variants."""
    from ionscope.denoise.superres import downsample
    from ionscope.simulate import simulate
    from ionscope.spacecharge.fit import interface_profile

    inp = tmp_path_factory.mktemp("careless-probe")
    rng = np.random.default_rng(0)
    series = signal(rng.random((3, 16, 16)), ("time", "y", "x"), name="li", units="1",
                    coords={"time": 60.0, "y": 2.0, "x": 2.0})
    io.save(series, inp / "series.zarr")
    _experiment_file(inp)
    np.save(inp / "raw3d.npy", rng.random((3, 8, 8)))
    io.save(simulate("eels_licoo2", seed=2, frames=[0], dose=1e8,
                     li_params={"ny": 16, "nx": 8, "layer_thickness_nm": 4, "layer_roughness_nm": 1}), inp / "eels.zarr")
    io.save(simulate("eels_sr", seed=1, positions=100, channels=192), inp / "sr.zarr")
    holo = dict(ny=64, nx=64, pixel_nm=0.5, vacuum_height_nm=8.0, interface_position_nm=16.0)
    io.save(simulate("holography", seed=1, **holo), inp / "holo.zarr")
    io.save(simulate("holography_ps", seed=0, frames=4, dose=1000.0, **holo), inp / "ps.zarr")
    train = simulate("licoo2", seed=1, ny=24, nx=24, charge_frames=2, rest1_frames=0, discharge_frames=0,
                     rest2_frames=0, dose=None).li_fraction_true
    io.save(train, inp / "train.zarr")
    io.save(downsample(train.isel(time=[1]), 2).rename("lr"), inp / "lr.zarr")
    x = np.arange(-10.0, 30.0, 0.25)
    kw = dict(psi0_V=-1.3, theta=0.95, eps_r=50.0, c0_m3=6e27, x0_nm=0.3)
    v = interface_profile(x, psf_nm=0.5, offset=0.1, **kw) + rng.normal(0, 0.01, x.size)
    li = interface_profile(x, psf_nm=0.7, quantity="li", offset=0.05, scale=0.8, **kw) + rng.normal(0, 0.01, x.size)
    for name, values in (("v", v), ("li", li)):
        (inp / f"{name}.csv").write_text("position_nm,value,sigma\n" + "".join(f"{a:.4f},{b:.6f},0.01\n" for a, b in zip(x, values)))
    from ionscope.simulate.composite_cathode_files import write_scan_files
    from ionscope.simulate.composite_cathode_params import CompositeCathodeParams
    from ionscope.simulate.composite_cathode_sims import simulate_sims

    tof = simulate_sims(CompositeCathodeParams(ny=48, nx=48, pixel_nm=20, charge_frames=1, rest_frames=0, sims_ny=16,
                                               sims_nx=16, sims_pixel_nm=50, sims_stage_shift_nm=40, sims_states=2))
    (inp / "tof").mkdir()
    for k in range(2):
        io.write_imzml(inp / "tof" / f"s{k}.imzML", tof["peak_mass"].values[k], tof["counts"].values[k],
                       pixel_size_um=0.05, skip_empty=True)
    # correlate's inputs: a 2.56 um KPFM field (so the default TOF-SIMS field fits) through kpfm process, its
    # TOF-SIMS through sims lithium
    (inp / "corrcell").mkdir()
    corr = dict(ny=128, nx=128, pixel_nm=20, charge_frames=1, rest_frames=0, sims_states=2)
    written = write_scan_files(simulate("composite_cathode", **corr), inp / "corrcell", sims=True)
    for args in (("kpfm", "process", *[p for p in written if p.suffix == ".sxm"], "--out", inp / "corrk"),
                 ("sims", "lithium", *[p for p in written if p.suffix == ".imzML"], "--pulses", "1920", "--out",
                  inp / "corrs")):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
    for args in (("simulate", "composite_cathode", "--param", "ny=48", "--param", "nx=48", "--param", "pixel_nm=20", "--param", "charge_frames=1",
                  "--param", "rest_frames=0", "--out", inp / "cell"),
                 ("kpfm", "process", inp / "cell" / "frame_000.sxm", inp / "cell" / "frame_001.sxm", "--out", inp / "kproc"),
                 ("holo", "reconstruct", f"{inp}/holo.zarr:hologram", "--reference", f"{inp}/holo.zarr:reference",
                  "--out", inp / "rec"),
                 ("holo", "potential", inp / "rec", "--kv", "300", "--thickness", "50", "--out", inp / "pot")):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
    from test_echem_cli import write_csv_log
    from test_echem_kernels import scaled_cycles

    (inp / "echem").mkdir()  # two cycler logs of 2 cycles (a first-cycle loss, then equal)
    write_csv_log(scaled_cycles(2.0, 0.5, cycles=2), inp / "echem" / "before.csv")
    write_csv_log(scaled_cycles(2.2, 0.5, cycles=2), inp / "echem" / "after.csv")
    # the careless variants of every input, once per input file
    done = set()
    for command in COMMANDS:
        for slot_name, slot in command.slots.items():
            key = _slot_key(command, slot_name)
            if key in done:
                continue
            done.add(key)
            source = _spec_path(slot.spec, inp)
            if slot.kind == "toml":
                _toml_variants(inp, key, source)
            elif slot.kind == "csv":
                _csv_variants(inp, key, source)
            elif slot.kind == "scan":
                _scan_variants(inp, key, source)
            elif slot.kind == "imzml":
                _imzml_variants(inp, key, source)
            elif slot.kind == "result":
                _result_variants(inp, key, source)
            else:
                spec = slot.spec.replace("{inp}", str(inp))
                da_source = inp / f".{key}.source.zarr"
                from ionscope.cli._app import load_input

                io.save(load_input(spec), da_source)
                _store_variants(inp, key, da_source)
                shutil.rmtree(da_source)
    (inp / "afile").write_text("a regular file\n")
    return inp


def _experiment_file(inp: Path) -> None:
    """run's valid input: an experiment of one denoise step on series.zarr."""
    (inp / "exp.toml").write_text(EXPERIMENT.format(data="series.zarr"))


def _slot_key(command: Command, slot: str) -> str:
    """The name of a slot's careless files: one set per distinct input."""
    spec = command.slots[slot].spec
    return (spec.replace("{inp}/", "").replace(":", "-").replace(".zarr", "").replace(".csv", "").replace(".sxm", "")
            .replace(".imzML", "").replace(".toml", "").replace("/", "-"))


# --------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    command: str
    category: str
    detail: str
    argv: tuple[str | None, ...]
    needs: str = ""  # "nonroot", "root-sys": when the variant can run

    @property
    def id(self) -> str:
        return f"{self.command}|{self.category}|{self.detail}"


def _apply(argv: tuple[str, ...], extra: tuple[str | None, ...]) -> tuple[str, ...]:
    """``argv`` with the options of ``extra``: ``OPTION VALUE`` replaces the option's value (or
    adds it), ``OPTION None`` removes the option and its value, an ``OPTION`` followed by another
    option (or by nothing) is a flag, added."""
    argv = list(argv)
    i = 0
    while i < len(extra):
        option = extra[i]
        has_value = i + 1 < len(extra) and (extra[i + 1] is None or not extra[i + 1].startswith("--"))
        value = extra[i + 1] if has_value else None
        if has_value and value is None:
            at = argv.index(option)
            del argv[at: at + 2]
        elif not has_value:
            argv.append(option)
        elif option in argv and option not in ("--param", "--extra", "--co-extra"):
            argv[argv.index(option) + 1] = value
        else:
            argv += [option, value]
        i += 2 if has_value else 1
    return tuple(argv)


def _default_out(command: Command) -> str:
    return "{tmp}/out" + ("" if command.out in ("dir", None) else command.out)


def _with(command: Command, **slots: str) -> tuple[str, ...]:
    """The valid argv with some inputs replaced."""
    out = []
    for arg in command.argv:
        for name, slot in command.slots.items():
            arg = arg.replace("{" + name + "}", slots.get(name, slot.spec))
        out.append(arg.replace("{out}", slots.get("out", _default_out(command))))
    return tuple(out)


def _variants() -> list[Variant]:
    found = []
    for c in COMMANDS:
        def add(category, detail, argv, needs="", c=c):
            found.append(Variant(c.name, category, detail, argv, needs))

        for slot_name, slot in c.slots.items():
            key = "{inp}/" + _slot_key(c, slot_name)
            p = slot_name
            if slot.kind == "toml":
                add("missing", p, _with(c, **{p: "{tmp}/missing.toml"}))
                add("empty", p, _with(c, **{p: key + ".empty.toml"}))
                add("truncated", p, _with(c, **{p: key + ".cut.toml"}))
                add("garbage", p, _with(c, **{p: key + ".garbage.toml"}))
                add("wrong-dims", p, _with(c, **{p: key + ".wrongdims.toml"}))
                if c.nan:
                    add("nan", p, _with(c, **{p: key + ".nan.toml"}))
            elif slot.kind == "csv":
                add("missing", p, _with(c, **{p: "{tmp}/missing.csv"}))
                add("empty", f"{p}-0-bytes", _with(c, **{p: key + ".empty.csv"}))
                add("empty", f"{p}-header-only", _with(c, **{p: key + ".header.csv"}))
                add("truncated", p, _with(c, **{p: key + ".cut.csv"}))
                add("garbage", f"{p}-bytes", _with(c, **{p: key + ".garbage.csv"}))
                add("garbage", f"{p}-text", _with(c, **{p: key + ".garbagetext.csv"}))
                add("wrong-dims", p, _with(c, **{p: key + ".wrongdims.csv"}))
                if c.nan:
                    add("nan", p, _with(c, **{p: key + ".nan.csv"}))
            elif slot.kind == "scan":
                ext = Path(slot.spec).suffix
                add("missing", p, _with(c, **{p: "{tmp}/missing" + ext}))
                add("empty", p, _with(c, **{p: key + ".empty" + ext}))
                add("truncated", p, _with(c, **{p: key + ".cut" + ext}))
                add("garbage", p, _with(c, **{p: key + ".garbage" + ext}))
                add("wrong-dims", p, _with(c, **{p: key + ".wrongdims.zarr"}))
                if c.nan:
                    add("nan", f"{p}-all-nan-frame", _with(c, **{p: key + ".nan" + ext}))
            elif slot.kind == "imzml":
                add("missing", p, _with(c, **{p: "{tmp}/missing.imzML"}))
                add("missing", f"{p}-ibd", _with(c, **{p: key + ".noibd.imzML"}))
                add("empty", p, _with(c, **{p: key + ".empty.imzML"}))
                add("empty", f"{p}-ibd", _with(c, **{p: key + ".emptyibd.imzML"}))
                add("truncated", p, _with(c, **{p: key + ".cut.imzML"}))
                add("truncated", f"{p}-ibd", _with(c, **{p: key + ".cutibd.imzML"}))
                add("garbage", p, _with(c, **{p: key + ".garbage.imzML"}))
                add("garbage", f"{p}-ibd", _with(c, **{p: key + ".garbageibd.imzML"}))
                add("garbage", f"{p}-ibd-of-another-file", _with(c, **{p: key + ".otheruuid.imzML"}))
                add("wrong-dims", p, _with(c, **{p: key + ".wrongdims.zarr"}))
                if c.nan:
                    add("nan", p, _with(c, **{p: key + ".nan.zarr"}))
            elif slot.kind == "result":
                add("missing", p, _with(c, **{p: "{tmp}/missing-result"}))
                add("empty", f"{p}-folder", _with(c, **{p: key + ".empty"}))
                add("empty", f"{p}-store", _with(c, **{p: key + ".emptystore"}))
                add("truncated", f"{p}-metadata", _with(c, **{p: key + ".cut"}))
                add("garbage", f"{p}-metadata", _with(c, **{p: key + ".garbage"}))
                add("wrong-dims", p, _with(c, **{p: key + ".wrongdims"}))
            else:
                add("missing", p, _with(c, **{p: "{tmp}/missing.zarr"}))
                add("missing", f"{p}-variable", _with(c, **{p: _spec_path(slot.spec, Path("{inp}")).as_posix() + ":nope"}))
                add("empty", f"{p}-0-byte-zarr", _with(c, **{p: key + ".empty.zarr"}))
                add("empty", f"{p}-empty-zarr-folder", _with(c, **{p: key + ".emptydir.zarr"}))
                add("empty", f"{p}-0-byte-hspy", _with(c, **{p: key + ".empty.hspy"}))
                add("truncated", f"{p}-hspy", _with(c, **{p: key + ".cut.hspy"}))
                add("truncated", f"{p}-npy", _with(c, **{p: key + ".cut.npy"}))
                add("truncated", f"{p}-zarr-metadata", _with(c, **{p: key + ".cutmeta.zarr"}))
                add("garbage", f"{p}-zarr-file", _with(c, **{p: key + ".garbage.zarr"}))
                add("garbage", f"{p}-zarr-metadata", _with(c, **{p: key + ".garbagemeta.zarr"}))
                add("garbage", f"{p}-hspy", _with(c, **{p: key + ".garbage.hspy"}))
                if c.name not in ("info", "convert"):  # any dims are fine to describe or copy
                    add("wrong-dims", p, _with(c, **{p: key + ".wrongdims.zarr"}))
                if c.nan:
                    add("nan", p, _with(c, **{p: key + ".nan.zarr"}))
        for i, argv in enumerate(c.wrong_dims):
            add("wrong-dims", f"case{i}", tuple(a.replace("{out}", _default_out(c)) for a in argv))
        for extra in c.absurd:
            add("absurd", " ".join("-" if e is None else e for e in extra), _apply(_with(c), extra))
        if c.out is not None:
            name = "out" + ("" if c.out == "dir" else c.out)
            add("unwritable", "under-a-file", _with(c, out=f"{{inp}}/afile/{name}"))
            if c.out == "dir":
                add("unwritable", "is-a-file", _with(c, out="{inp}/afile"))
            add("unwritable", "no-permission", _with(c, out=f"{{tmp}}/locked/{name}"), needs="nonroot")
            add("unwritable", "sysfs", _with(c, out=f"/sys/ionscope-careless-probe/{name}"), needs="sysfs")
            paths = {}
            for slot_name, slot in c.slots.items():
                target = slot.spec if slot.kind == "result" else _spec_path(slot.spec, Path("{inp}")).as_posix()
                paths.setdefault(target, slot_name)
            for target, slot_name in paths.items():
                for overwrite in ((), ("--overwrite",)):
                    add("out-is-input", f"{slot_name}{''.join(overwrite)}", _with(c, out=target) + overwrite)
                if slot_name == "main":
                    dotdot = target.replace("{inp}/", "{inp}/../{inpname}/")
                    add("out-is-input", "main-via-dotdot", _with(c, out=dotdot) + ("--overwrite",))
                    add("out-is-input", "main-via-symlink", _with(c, out="{tmp}/link") + ("--overwrite",), needs="link:" + target)
    return found


VARIANTS = _variants()


# --------------------------------------------------------------------------- the promise


def _tree(*roots: Path, shallow: Path) -> dict[str, tuple]:
    """Every entry under ``roots`` (and the top level of ``shallow``): folders by name, files by
    size and mtime."""
    entries = {}
    for entry in os.scandir(shallow):
        st = entry.stat(follow_symlinks=False)
        entries[entry.path] = ("dir",) if entry.is_dir(follow_symlinks=False) else (st.st_size, st.st_mtime_ns)
    for root in roots:
        if not root.is_dir():
            continue
        for folder, dirs, files in os.walk(root):
            for name in dirs:
                entries[os.path.join(folder, name)] = ("dir",)
            for name in files:
                st = os.lstat(os.path.join(folder, name))
                entries[os.path.join(folder, name)] = (st.st_size, st.st_mtime_ns)
    return entries


def _digest(path: Path) -> str:
    """sha256 of a file, or of a folder's files (names and bytes)."""
    h = hashlib.sha256()
    if path.is_dir():
        for folder, dirs, files in sorted(os.walk(path)):
            dirs.sort()
            for name in sorted(files):
                h.update(os.path.relpath(os.path.join(folder, name), path).encode())
                h.update(Path(folder, name).read_bytes())
    elif path.exists():
        h.update(path.read_bytes())
    return h.hexdigest()


def _fill(argv, inp: Path, tmp: Path) -> list[str]:
    return [a.replace("{inpname}", inp.name).replace("{inp}", str(inp)).replace("{tmp}", str(tmp)) for a in argv]


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_a_careless_invocation_is_refused_with_one_line_and_leaves_everything_as_it_was(
        run_cli, inputs, tmp_path, variant):
    if variant.needs == "nonroot":
        if os.geteuid() == 0:
            pytest.skip("root writes into a folder without write permission; chmod cannot make it unwritable")
        (tmp_path / "locked").mkdir()
        (tmp_path / "locked").chmod(0o500)
    if variant.needs == "sysfs":
        probe = Path("/sys/ionscope-careless-probe")
        try:
            probe.mkdir()
        except OSError:
            pass
        else:
            probe.rmdir()
            pytest.skip("/sys is writable here")
    if variant.needs.startswith("link:"):
        (tmp_path / "link").symlink_to(variant.needs[5:].replace("{inp}", str(inputs)))
    argv = _fill(variant.argv, inputs, tmp_path)
    given = [Path(a.rsplit(":", 1)[0]) if ":" in Path(a).name else Path(a) for a in argv]
    # the inputs the command is given (files, stores, result folders) and everything in them
    given = {p.resolve() for p in given if p.exists() and (inputs in p.resolve().parents)}
    digests = {p: _digest(p) for p in given}
    # the test's folder, every given input, the top of the inputs' folder (a command knows no
    # other paths of it to write to)
    before = _tree(tmp_path, *given, shallow=inputs)
    try:
        result = run_cli(*argv)
        _error_line(result)
        text = result.stdout + result.stderr
        assert "Traceback" not in text and "internal error" not in text, text
        assert _tree(tmp_path, *given, shallow=inputs) == before, "something was written, moved or removed"
        assert {p: _digest(p) for p in digests} == digests, "an input changed"
        assert not Path("/sys/ionscope-careless-probe").exists()
    finally:
        if (tmp_path / "locked").exists():
            (tmp_path / "locked").chmod(0o700)


def test_the_valid_invocation_works(run_cli, inputs, tmp_path):
    """Each variant differs from a working invocation by its careless part only."""
    failed = []
    for command in COMMANDS:
        if not command.run_valid:
            continue
        folder = tmp_path / command.name.replace(" ", "-")
        folder.mkdir()
        result = run_cli(*_fill(_with(command), inputs, folder))
        if result.returncode != 0:
            failed.append(f"{command.name}: {result.stderr.strip()}")
    assert not failed, failed


def test_every_command_is_probed():
    """A new command joins the table as it lands (and the table names no command that is gone)."""
    import typer

    from ionscope.cli import app

    def names(group, prefix=""):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):  # a group (of Typer's own click)
                yield from names(cmd, f"{prefix}{name} ")
            else:
                yield f"{prefix}{name}"

    assert sorted(names(typer.main.get_command(app))) == sorted(c.name for c in COMMANDS)


def test_every_category_is_probed():
    """The table covers each category of the issue for at least one command each."""
    categories = {v.category for v in VARIANTS}
    assert categories == {"missing", "empty", "truncated", "garbage", "wrong-dims", "nan", "absurd",
                          "unwritable", "out-is-input"}

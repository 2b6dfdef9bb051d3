"""A Zarr store that lost, truncated or corrupted a chunk is an error, never fill values (issue 12):
ionscope's stores carry a chunk manifest that every load checks; foreign stores get a completeness
check; the CLI says so in one line and writes nothing."""

from __future__ import annotations

import shutil
import warnings

import dask
import numpy as np
import pytest
import xarray as xr
import zarr
from daskcount import CountingScheduler

from ionscope import io
from ionscope.data import signal
from ionscope.errors import FormatError, InputError
from ionscope.io import _integrity
from ionscope.io._integrity import ArrayLayout, array_layouts, read_manifest

ZARR3 = int(zarr.__version__.split(".")[0]) >= 3
METADATA = {".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"}


def _error_line(result):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _series():
    rng = np.random.default_rng(0)
    return signal(rng.random((4, 16, 12)), ("time", "y", "x"), name="li", units="1",
                  coords={"time": 60.0, "y": 2.0, "x": 2.0}).chunk({"time": 1, "y": 8})


def _chunks(store, name):
    """The chunk files of array ``name``, sorted (whatever the Zarr format)."""
    return sorted(p for p in (store / name).rglob("*") if p.is_file() and p.name not in METADATA)


def _damage(path, how):
    data = path.read_bytes()
    if how == "deleted":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:  # flipped: same size, other bytes
        path.write_bytes(data[:-8] + bytes(b ^ 0xFF for b in data[-8:]))


@pytest.fixture
def store(tmp_path):
    return io.save(_series(), tmp_path / "s.zarr")


def _foreign(tmp_path, **kwargs):
    """A store written by plain xarray with its defaults (no ionscope manifest)."""
    ds = xr.Dataset({"a": (("t", "y"), np.random.default_rng(1).random((10, 8)))}, coords={"t": np.arange(10.0)})
    path = tmp_path / "foreign.zarr"
    with warnings.catch_warnings():  # zarr 3 on the consolidated metadata xarray writes by default
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        ds.chunk({"t": 3}).to_zarr(path, **kwargs)
    return path


# --------------------------------------------------------------------------- the manifest


def test_save_lists_every_chunk_with_size_and_digest(store):
    manifest = read_manifest(store)
    assert manifest["digest"] == "xxh3_64" and set(manifest["arrays"]) == {"li", "time", "y", "x"}
    entries = manifest["arrays"]["li"]
    assert len(entries) == 4 * 2 * 1 == len(_chunks(store, "li"))
    for key, (size, digest) in entries.items():
        assert (store / "li" / key).stat().st_size == size
        assert _integrity.file_digest(store / "li" / key) == (size, digest)


def test_a_variable_cannot_take_the_manifest_s_name(tmp_path):
    with pytest.raises(InputError, match="rename it"):
        io.save(_series().rename(_integrity.MANIFEST_GROUP), tmp_path / "s.zarr")
    assert not list(tmp_path.iterdir())


def test_the_manifest_causes_no_warning_in_xarray_or_zarr(store):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for consolidated in (None, False):
            xr.open_zarr(store, consolidated=consolidated).load()
        group = zarr.open_group(store, mode="r")
        assert "li" in dict(group.arrays())
        list(group.groups())


def test_a_valid_store_opens_lazily_without_reading_a_chunk(store):
    for path in _chunks(store, "li"):  # every data chunk corrupt (same sizes): only a read can tell
        _damage(path, "flipped")
    with dask.config.set(scheduler=CountingScheduler(0)):
        da = io.load(store, lazy=True)
        assert da.chunks is not None and (da.mean("time") * 2).chunks is not None
    with pytest.raises(FormatError, match=r"variable 'li', chunk li/\S+ is corrupt"):
        np.asarray(da.values)


def test_a_lazy_load_checks_each_chunk_as_it_is_read(store):
    first, second = _chunks(store, "li")[:2]
    _damage(second, "flipped")
    da = io.load(store, lazy=True)
    assert np.array_equal(da.isel(time=0, y=slice(0, 8)).values, _series().isel(time=0, y=slice(0, 8)).values)
    key = second.relative_to(store).as_posix()
    with pytest.raises(FormatError, match=f"chunk {key} is corrupt"):
        np.asarray(da.isel(time=0).values)


def test_a_chunk_damaged_after_it_was_checked_is_still_found(store):
    """Chunks are hashed once per process while unchanged; a write changes the file's ctime."""
    io.load(store)
    _damage(_chunks(store, "li")[0], "flipped")
    with pytest.raises(FormatError, match="is corrupt"):
        io.load(store)


def test_round_trip_through_the_checked_reader_is_exact(store):
    xr.testing.assert_identical(io.load(store), _series().compute())
    xr.testing.assert_identical(io.load(store, lazy=True).compute(), _series().compute())


@pytest.mark.parametrize("how", ["deleted", "truncated", "flipped"])
def test_a_damaged_chunk_of_an_ionscope_store_is_an_error(store, how):
    path = _chunks(store, "li")[3]
    _damage(path, how)
    word = {"deleted": "is missing", "truncated": "is truncated", "flipped": "is corrupt"}[how]
    with pytest.raises(FormatError, match=f"chunk {path.relative_to(store).as_posix()} {word}"):
        io.load(store)
    if how != "flipped":  # found at open, without reading
        with pytest.raises(FormatError, match=word):
            io.load(store, lazy=True)


@pytest.mark.parametrize("how", ["deleted", "truncated", "flipped"])
@pytest.mark.parametrize("command", ["info", "convert"])
def test_the_cli_refuses_a_damaged_ionscope_store(store, run_cli, tmp_path, how, command):
    path = _chunks(store, "li")[5]
    _damage(path, how)
    out = tmp_path / "out.zarr"
    args = ("info", store) if command == "info" else ("convert", store, "--out", out)
    line = _error_line(run_cli(*args))
    assert path.relative_to(store).as_posix() in line and "copy the store again" in line
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_info_on_a_result_folder_checks_its_store(tmp_path, run_cli):
    folder = tmp_path / "run"
    folder.mkdir()
    store = io.save(_series(), folder / "result.zarr")
    assert run_cli("info", folder).returncode == 0
    _damage(_chunks(store, "li")[-2], "flipped")
    assert "is corrupt" in _error_line(run_cli("info", folder))


def test_a_lost_variable_is_an_error(store):
    shutil.rmtree(store / "x")
    with pytest.raises(FormatError, match="variable 'x' is missing"):
        io.load(store, lazy=True)


def test_an_unreadable_manifest_is_an_error(store):
    for meta in (store / _integrity.MANIFEST_GROUP).iterdir():
        meta.write_text("{")
    with pytest.raises(FormatError, match="manifest .* is unreadable"):
        io.load(store, lazy=True)


def test_a_store_without_its_manifest_gets_the_foreign_check(store):
    shutil.rmtree(store / _integrity.MANIFEST_GROUP)
    xr.testing.assert_identical(io.load(store), _series().compute())  # every chunk was written
    _chunks(store, "li")[0].unlink()
    with pytest.raises(FormatError, match="lacks 1 of its 8 chunk files"):
        io.load(store, lazy=True)


# --------------------------------------------------------------------------- foreign stores


def test_a_complete_foreign_store_opens(tmp_path):
    path = _foreign(tmp_path)
    ds = io.open_dataset(path, lazy=True)
    assert ds["a"].chunks == ((3, 3, 3, 1), (8,))
    np.testing.assert_array_equal(ds["a"].values, xr.open_zarr(path)["a"].values)


def test_a_foreign_store_that_lost_a_chunk_is_an_error(tmp_path, run_cli):
    path = _foreign(tmp_path)
    lost = _chunks(path, "a")[1]
    lost.unlink()
    for lazy in (False, True):
        with pytest.raises(FormatError, match=r"variable 'a' lacks 1 of its 4 chunk files .*write_empty_chunks"):
            io.open_dataset(path, lazy=lazy)
    assert "lacks 1 of its 4" in _error_line(run_cli("info", path))
    out = tmp_path / "out.zarr"
    assert "lacks 1 of its 4" in _error_line(run_cli("convert", path, "--out", out))
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_a_truncated_compressed_chunk_of_a_foreign_store_is_a_clear_error(tmp_path, run_cli):
    path = _foreign(tmp_path)
    cut = _chunks(path, "a")[1]
    _damage(cut, "truncated")
    key = cut.relative_to(path).as_posix()
    damaged = f"variable 'a', chunk {key} (cannot be decoded|is truncated)"  # zstd (zarr 3), Blosc (zarr 2)
    with pytest.raises(FormatError, match=damaged):
        io.open_dataset(path)
    ds = io.open_dataset(path, lazy=True)  # found on reading: a lazy open reads no chunk
    with pytest.raises(FormatError, match=damaged):
        np.asarray(ds["a"].values)
    out = tmp_path / "out.zarr"
    assert key in _error_line(run_cli("convert", path, "--out", out))
    assert not out.exists()


def test_a_truncated_uncompressed_chunk_of_a_foreign_store_is_found_at_open(tmp_path, run_cli):
    codec = {"compressors": None} if ZARR3 else {"compressor": None}
    path = _foreign(tmp_path, encoding={"a": codec})
    _damage(_chunks(path, "a")[2], "truncated")
    assert "is truncated" in _error_line(run_cli("info", path))


@pytest.mark.skipif(not ZARR3, reason="sharding is Zarr format 3 (zarr-python 3)")
def test_a_sharded_foreign_store_is_checked_shard_by_shard(tmp_path):
    ds = xr.Dataset({"a": (("t", "y"), np.random.default_rng(2).random((8, 8)))})
    path = tmp_path / "sharded.zarr"
    ds.to_zarr(path, encoding={"a": {"chunks": (2, 2), "shards": (4, 4)}}, consolidated=False)
    assert array_layouts(path)["a"].chunks == (4, 4)
    np.testing.assert_array_equal(io.open_dataset(path)["a"].values, ds["a"].values)
    _chunks(path, "a")[0].unlink()
    with pytest.raises(FormatError, match="lacks 1 of its 4 chunk files"):
        io.open_dataset(path, lazy=True)


# --------------------------------------------------------------------------- chunk keys


def test_chunk_keys_follow_the_metadata():
    v2 = _integrity._layout_v2("a", {"shape": [5, 4], "chunks": [2, 4], "dtype": "<f8"}, {})
    assert v2.grid == (3, 1) and v2.keys((2, 0)) == ["2.0", "2/0"]  # no dimension_separator: either
    nested = _integrity._layout_v2("a", {"shape": [5], "chunks": [2], "dtype": "<f8", "dimension_separator": "/",
                                         "compressor": {"id": "zstd"}}, {"_ARRAY_DIMENSIONS": ["t"]})
    assert nested.keys((1,)) == ["1"] and nested.dims == ("t",) and nested.raw_nbytes is None
    assert v2.raw_nbytes == 2 * 4 * 8 and v2.keys(()) == ["0", "0"]
    meta = {"shape": [4, 4], "data_type": "int16", "chunk_grid": {"name": "regular", "configuration": {
        "chunk_shape": [2, 3]}}, "codecs": [{"name": "bytes"}], "fill_value": 0}
    v3 = _integrity._layout_v3("a", meta)
    assert v3.grid == (2, 2) and v3.keys((1, 1)) == ["c/1/1"] and v3.raw_nbytes == 12
    assert v3.keys(()) == ["c"]
    dotted = _integrity._layout_v3("a", {**meta, "chunk_key_encoding": {"name": "v2"}})
    assert dotted.keys((1, 0)) == ["1.0"] and dotted.keys(()) == ["0"]
    assert _integrity._layout_v3("a", {**meta, "chunk_grid": {"name": "rectilinear"}}) is None


def test_the_chunks_a_read_touches():
    layout = ArrayLayout("a", (10, 8), (3, 4), "default", ("/",))
    assert layout.touched((slice(0, 3), slice(None))) == [(0, 0), (0, 1)]
    assert layout.touched((-1, 5)) == [(3, 1)]
    assert layout.touched((np.array([1, 7]), slice(4, 4))) == []
    assert layout.touched((slice(None, None, -1), np.array([True] + [False] * 7))) == [(i, 0) for i in range(4)]


def test_a_truncated_blosc_chunk_is_caught_by_its_header(tmp_path):
    """Blosc decompresses a cut frame into garbage without a word: its header's size is checked."""
    if ZARR3:
        from zarr.codecs import BloscCodec

        path = _foreign(tmp_path, encoding={"a": {"compressors": [BloscCodec()]}})
    else:
        from numcodecs import Blosc

        path = _foreign(tmp_path, encoding={"a": {"compressor": Blosc()}})
    cut = _chunks(path, "a")[1]
    _damage(cut, "truncated")
    key = cut.relative_to(path).as_posix()
    with pytest.raises(FormatError, match=f"chunk {key} is truncated .* its Blosc header says"):
        io.open_dataset(path)
    ds = io.open_dataset(path, lazy=True)
    with pytest.raises(FormatError, match=f"chunk {key} is truncated .* its Blosc header says"):
        np.asarray(ds["a"].values)

"""The codecs and chunks io.save chooses (ionscope/io/_codecs.py), under whichever zarr-python is
installed: zarr 3 in `make test`'s venv, zarr 2 in `make test-min`'s. Each test takes the installed
branch, and reads the codec back from the store's own metadata (``.zarray`` for Zarr format 2,
``zarr.json`` for format 3), so what is asserted is what another reader sees."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from ionscope import io
from ionscope.data import signal
from ionscope.io import _codecs

ZARR3 = int(zarr.__version__.split(".")[0]) >= 3
LZ4 = {"cname": "lz4", "clevel": 1, "shuffle": "bitshuffle"}
#: numcodecs' Blosc shuffle constants as zarr 3 spells them
SHUFFLE = {0: "noshuffle", 1: "shuffle", 2: "bitshuffle"}


def _stored_codec(store, name):
    """The compressor of variable ``name`` as its metadata file records it: None or
    ``{"cname", "clevel", "shuffle"}`` of Blosc."""
    folder = store / name
    if (folder / ".zarray").exists():  # Zarr format 2 (written by zarr 2, or by zarr 3 asked for it)
        meta = json.loads((folder / ".zarray").read_text())["compressor"]
        if meta is None:
            return None
        assert meta["id"] == "blosc", meta
        return {"cname": meta["cname"], "clevel": meta["clevel"], "shuffle": SHUFFLE[meta["shuffle"]]}
    codecs = json.loads((folder / "zarr.json").read_text())["codecs"]
    compressors = [c for c in codecs if c["name"] not in ("bytes", "transpose")]
    if not compressors:
        return None
    (blosc,) = compressors
    assert blosc["name"] == "blosc", codecs
    return {k: blosc["configuration"][k] for k in LZ4}


def _variables():
    rng = np.random.default_rng(7)
    maps = rng.random((40, 96, 96)).astype(np.float32)         # noisy floats: do not compress
    counts = rng.poisson(2.0, (40, 96, 96)).astype(np.float32)  # counts stored as floats: compress
    ds = signal(maps, ("time", "y", "x"), name="maps", units="1").to_dataset()
    ds["counts"] = (("time", "y", "x"), counts, {"units": "counts"})
    ds["labels"] = (("time", "y", "x"), rng.integers(0, 4, (40, 96, 96)).astype(np.int32))
    return ds


def test_the_installed_zarr_branch_spells_the_codec_its_own_way():
    codec = _codecs.blosc_lz4()
    if ZARR3:
        from zarr.codecs import BloscCodec

        assert isinstance(codec, BloscCodec)
        assert (codec.cname.value, codec.clevel, codec.shuffle.value) == ("lz4", 1, "bitshuffle")
        assert _codecs._codec_encoding(True) == {"compressors": [codec]}
        assert _codecs._codec_encoding(False) == {"compressors": []}
    else:
        from numcodecs import Blosc

        assert codec == Blosc(cname="lz4", clevel=1, shuffle=Blosc.BITSHUFFLE)
        assert _codecs._codec_encoding(True) == {"compressor": codec}
        assert _codecs._codec_encoding(False) == {"compressor": None}


def test_in_memory_variables_round_trip_with_the_codec_the_sample_chose(tmp_path):
    ds = _variables()
    store = io.save(ds, tmp_path / "mem.zarr")
    assert _stored_codec(store, "maps") is None
    assert _stored_codec(store, "counts") == LZ4
    assert _stored_codec(store, "labels") == LZ4
    back = io.open_dataset(store)
    for name in ("maps", "counts", "labels"):
        np.testing.assert_array_equal(back[name].values, ds[name].values)
        assert back[name].dtype == ds[name].dtype
    # ~16 MB chunks along the first dim: each 1.5 MB variable is one chunk
    assert back["maps"].encoding["chunks"] == (40, 96, 96)


def test_lazy_variables_round_trip_with_the_codec_chosen_by_dtype_and_small_chunks_merged(tmp_path):
    ds = _variables().chunk({"time": 1})  # 37 KB chunks: merged up to the target size
    store = io.save(ds, tmp_path / "lazy.zarr")
    assert _stored_codec(store, "maps") is None
    assert _stored_codec(store, "counts") is None  # lazy floats are not sampled: that would compute a chunk
    assert _stored_codec(store, "labels") == LZ4    # lazy integers compress
    back = io.open_dataset(store)
    for name in ("maps", "counts", "labels"):
        np.testing.assert_array_equal(back[name].values, ds[name].values)
    assert back["maps"].encoding["chunks"][0] == 40


@pytest.mark.parametrize("compress", [True, False])
def test_a_store_read_by_plain_zarr_gives_the_same_values(tmp_path, compress):
    rng = np.random.default_rng(1)
    values = (rng.poisson(3.0, (80, 64, 64)) if compress else rng.random((80, 64, 64))).astype(np.float32)
    store = io.save(signal(values, ("time", "y", "x"), name="v", units="1"), tmp_path / "v.zarr")
    assert (_stored_codec(store, "v") == LZ4) is compress
    np.testing.assert_array_equal(np.asarray(zarr.open_group(str(store), mode="r")["v"][:]), values)

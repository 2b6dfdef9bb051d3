"""A dask scheduler that counts computes: proves a computation stays lazy while it is built."""

import dask


class CountingScheduler:
    """Fail if dask computes more than ``max_computes`` times (xarray's raise_if_dask_computes)."""

    def __init__(self, max_computes: int = 0):
        self.total, self.max_computes = 0, max_computes

    def __call__(self, dsk, keys, **kwargs):
        self.total += 1
        if self.total > self.max_computes:
            raise RuntimeError(f"too many dask computes: {self.total} > {self.max_computes}")
        return dask.get(dsk, keys, **kwargs)

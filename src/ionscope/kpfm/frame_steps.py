"""Every frame's steps of :func:`~ionscope.kpfm.workflow.process_frames`, in memory or per dask time chunk.

Once the first frame is known (its reference box, the registration guide, the PSF, the cycler
log on the frames' clock), every frame is signed, referenced on the reference box (moved with
the drift, or found again), registered onto the first frame's guide, measured for noise,
Wiener-deconvolved, resampled onto the first frame's grid and given its row times (s) and the
cell's state at every row: ``_FrameSteps``, called on all frames at once or, through
``_lazy_steps``, on one time chunk of a dask series at a time - the same numbers either way.
Internal to the workflow: no public names.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from ionscope.errors import InputError
from ionscope.kpfm.channels import sample_potential_kernel
from ionscope.kpfm.level import (
    find_reference_kernel, flat_noise_kernel, level_topography_kernel, reference_kernel, trace_noise_kernel,
)
from ionscope.kpfm.psf import PSF, wiener_deconvolve_kernel
from ionscope.kpfm.reference import _line_offset_sd, _moved_box
from ionscope.kpfm.timeline import interpolate_kernel
from ionscope.register.stack import frame_shifts_kernel, shift_frame_kernel


def _median(values: np.ndarray) -> float:
    """The median of the finite values (NaN when there are none)."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")


@dataclasses.dataclass
class _FrameSteps:
    """What :func:`~ionscope.kpfm.workflow.process_frames` does to each frame once the first
    frame is known: the sign, the referencing (the box moved with the drift, or found again), the
    registration onto the first frame's guide, the noise, the Wiener deconvolution, the
    resampling onto the first frame's grid, the row times and the cell's state. Called on all
    frames at once (in memory) or on one time chunk at a time (dask): the same numbers either
    way."""

    bias_on: str
    channel: str
    box: tuple[int, int, int, int]
    auto: bool
    edge: str | None
    align: bool
    use_topo: bool
    guide0: np.ndarray | None
    mask: np.ndarray | None
    upsample: int
    max_shift_fraction: float
    least: float
    on: str
    names: list[str]
    psf: PSF | None
    balance: float
    aspect: float
    noise_fallback: float | None  # None: the median over the frames given (all of them, in memory)
    row_times: np.ndarray  # (n, y) s from each frame's start
    times: np.ndarray  # (n,) frame starts
    log: dict[str, Any] | None
    offset: float

    def __call__(self, stacks: dict[str, np.ndarray], k0: int) -> dict[str, np.ndarray]:
        traces = np.asarray(stacks["potential"])
        m, ny, nx = traces.shape
        frames = range(k0, k0 + m)
        raw = np.empty((m, ny, nx))
        for j, k in enumerate(frames):
            raw[j] = sample_potential_kernel(traces[j], self.bias_on)
            if not np.isfinite(raw[j]).any():
                raise InputError(f"{self.names[k]} holds no finite {self.channel} values (all NaN); leave it out of "
                                 "the series")
        referenced = np.stack([reference_kernel(raw[j], self.box)[0] for j in range(m)])
        shifts = np.zeros((m, 2))
        match = np.full(m, np.nan)
        if k0 == 0:
            match[0] = 1.0
        if self.align:
            if self.use_topo:
                topo = np.asarray(stacks["topography"])
                images = np.stack([level_topography_kernel(topo[j]) for j in range(m)])
            else:
                images = referenced
            lead = 0 if k0 == 0 else 1  # registered onto the first frame's guide, also in later chunks
            if lead:
                images = np.concatenate([self.guide0[None], images])
            found, matched = frame_shifts_kernel(images, upsample=self.upsample, mask=self.mask)
            shifts, match = found[lead:], matched[lead:]
            for j, k in enumerate(frames):
                if k == 0:
                    continue
                if abs(shifts[j, 0]) > self.max_shift_fraction * ny or abs(shifts[j, 1]) > self.max_shift_fraction * nx:
                    raise InputError(f"{self.names[k]} is shifted by ({shifts[j, 0]:.1f}, {shifts[j, 1]:.1f}) px from "
                                     f"{self.names[0]}, more than {self.max_shift_fraction:.0%} of the field: the "
                                     "frames are not of one field of view")
                if not (match[j] >= self.least):
                    raise InputError(f"{self.names[k]} does not match {self.names[0]} after registration (edge "
                                     f"correlation {match[j]:.2f} < {self.least:g} on the {self.on}): the frames are "
                                     "not of one field of view")
        boxes = []
        for j, k in enumerate(frames):
            if k == 0:
                boxes.append(self.box)
                continue
            moved = _moved_box(self.box, shifts[j], (ny, nx))
            if self.auto:  # the collector found again in this frame, along the same edge (as wide as it is here)
                try:
                    moved = find_reference_kernel(raw[j], edges=(self.edge,))[0]
                except InputError:
                    pass
            if moved is None:
                raise InputError(f"in {self.names[k]} the reference region has drifted out of the field; give a "
                                 "reference box further inside")
            boxes.append(moved)
            if moved != tuple(self.box):
                referenced[j] = reference_kernel(raw[j], moved)[0]
        # noise of the trace used: the reference region; the forward - backward difference
        noise = np.array([flat_noise_kernel(referenced[j], boxes[j]) for j in range(m)])
        trace_noise = np.full(m, np.nan)
        if "forward" in stacks:
            fwd, bwd = np.asarray(stacks["forward"]), np.asarray(stacks["backward"])
            trace_noise = np.array([trace_noise_kernel(fwd[j], bwd[j]) for j in range(m)])
        out = {"shifts": shifts, "match": match, "noise": noise, "trace_noise": trace_noise}
        out["potential_raw"] = self._onto_grid(referenced, shifts)
        if self.psf is not None:
            fallback = self.noise_fallback if self.noise_fallback is not None else _median(noise)
            if not np.isfinite(fallback) or fallback <= 0:
                raise InputError("the noise of the reference region could not be measured; deconvolution needs it "
                                 "(give a larger reference box)")
            deconvolved = np.empty_like(referenced)
            for j in range(m):
                nk = noise[j] if np.isfinite(noise[j]) and noise[j] > 0 else fallback
                y0, y1, x0, x1 = boxes[j]
                row_sd = _line_offset_sd(raw[j], boxes[j], nk)
                d = wiener_deconvolve_kernel(referenced[j], self.psf, nk, balance=self.balance, aspect=self.aspect,
                                             row_noise_sd=row_sd)
                deconvolved[j] = d - np.nanmedian(d[y0:y1, x0:x1])
            out["potential"] = self._onto_grid(deconvolved, shifts)
        # row times on the first frame's grid: row r of the grid was scanned in frame k at raw row r - shift_y
        rows = np.arange(ny, dtype=np.float64)
        row_time = np.empty((m, ny))
        covered = np.empty((m, ny), dtype=bool)  # grid rows the frame scanned (not extrapolated)
        for j, k in enumerate(frames):
            rt = self.row_times[k]
            at = rows - shifts[j, 0]
            covered[j] = (at >= -0.5) & (at <= ny - 0.5)
            inner = np.interp(at, rows, rt)
            slope_lo = rt[1] - rt[0] if ny > 1 else 0.0
            slope_hi = rt[-1] - rt[-2] if ny > 1 else 0.0
            inner = np.where(at < 0, rt[0] + at * slope_lo, inner)
            inner = np.where(at > ny - 1, rt[-1] + (at - (ny - 1)) * slope_hi, inner)
            row_time[j] = self.times[k] + inner
        out["row_time"], out["covered"] = row_time, covered
        if self.log is not None:  # the cell's state at every row, and its mean over the frame's rows
            t_log = row_time + self.offset
            # mA and mAh, as the shared timeline (ionscope.timeline) and the cycler logs (io.load_cycler)
            for key, name in (("v", "voltage_V"), ("i", "current_mA"), ("q", "charge_mAh")):
                out["row_" + key] = interpolate_kernel(self.log["time_s"], self.log[name], t_log)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    out["cell_" + key] = np.nanmean(out["row_" + key], axis=1)
        return out

    def _onto_grid(self, stack: np.ndarray, shifts: np.ndarray) -> np.ndarray:
        """Resampled onto the first frame's grid (float32); the reference median is 0 there."""
        out = np.empty(stack.shape, dtype=np.float32)
        y0, y1, x0, x1 = self.box
        for j in range(stack.shape[0]):
            out[j] = shift_frame_kernel(stack[j].astype(np.float32), shifts[j]) if shifts[j].any() else stack[j]
            part = out[j, y0:y1, x0:x1]
            if np.isfinite(part).any():
                out[j] -= np.float32(np.nanmedian(part))
        return out


#: The outputs of :class:`_FrameSteps`: (trailing shape as a function of (y, x), dtype).
_OUTPUTS = {
    "potential_raw": (lambda ny, nx: (ny, nx), np.float32), "potential": (lambda ny, nx: (ny, nx), np.float32),
    "shifts": (lambda ny, nx: (2,), np.float64), "match": (lambda ny, nx: (), np.float64),
    "noise": (lambda ny, nx: (), np.float64), "trace_noise": (lambda ny, nx: (), np.float64),
    "row_time": (lambda ny, nx: (ny,), np.float64), "covered": (lambda ny, nx: (ny,), bool),
    **{f"row_{k}": (lambda ny, nx: (ny,), np.float64) for k in "viq"},
    **{f"cell_{k}": (lambda ny, nx: (), np.float64) for k in "viq"},
}


def _lazy_steps(steps: _FrameSteps, stacks: dict[str, Any], shape: tuple[int, int]) -> dict[str, Any]:
    """:class:`_FrameSteps` mapped over the time chunks of dask stacks: every output a dask array
    (time, ...), one task per chunk, nothing computed."""
    import dask
    import dask.array as da

    ny, nx = shape
    chunks = stacks["potential"].chunks[0]
    blocks = {k: v.rechunk({0: chunks, 1: -1, 2: -1}).to_delayed().ravel() for k, v in stacks.items()}
    call = dask.delayed(steps, pure=True)
    keys = [k for k in _OUTPUTS if (k != "potential" or steps.psf is not None)
            and (not k.startswith(("row_v", "row_i", "row_q", "cell_")) or steps.log is not None)]
    parts: dict[str, list[Any]] = {k: [] for k in keys}
    k0 = 0
    for i, m in enumerate(chunks):
        result = call({k: b[i] for k, b in blocks.items()}, k0)
        for k in keys:
            tail, dtype = _OUTPUTS[k]
            parts[k].append(da.from_delayed(result[k], (m, *tail(ny, nx)), dtype=dtype))
        k0 += m
    return {k: da.concatenate(v) if len(v) > 1 else v[0] for k, v in parts.items()}

"""Which KPFM frames go with which TOF-SIMS states of charge.

A KPFM change (frame ``b`` minus frame ``a``) is compared with a TOF-SIMS change (state ``d``
against state ``c``). The pairs come from ``--pairs FRAME:STATE,...`` (each KPFM frame, by index
or by time label, with the SIMS state it matches), from the cell's state when both results carry
the timeline (frames and states matched by the charge passed), or by the contract's default
(:doc:`/guide/correlate`, ``ionscope correlate``): the last frame minus the first against the first state pair
(first -> second state).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ionscope.errors import ConfigError, InputError

__all__ = ["parse_pairs", "default_pairs", "pairs_by_charge"]


def _index(token: str, names: Sequence[str], what: str) -> int:
    token = token.strip()
    if token in names:
        return list(names).index(token)
    try:
        k = int(token)
    except ValueError:
        raise InputError(f"--pairs: no {what} {token!r}; the {what}s are {', '.join(names)} (or 0..{len(names) - 1})"
                         ) from None
    if not -len(names) <= k < len(names):
        raise InputError(f"--pairs: {what} {k} does not exist; there are {len(names)} ({', '.join(names)})")
    return k % len(names)


def parse_pairs(text: str, frames: Sequence[str], states: Sequence[str]) -> list[tuple[int, int]]:
    """``"0:pristine,9:charge1"`` -> ``[(0, 0), (9, 1)]``: (frame, state) index pairs.

    Frames and states are named by their labels (``frames``, ``states``) or by index (negative
    from the end). At least two pairs are needed (a change is a difference of two).

    Raises
    ------
    ConfigError
        Not ``FRAME:STATE,...``, fewer than two pairs, or a frame or state given twice.
    InputError
        A frame or state that does not exist.

    Examples
    --------
    >>> parse_pairs("0:pristine, -1:charge1", ["f0", "f1", "f2"], ["pristine", "charge1"])
    [(0, 0), (2, 1)]
    """
    parts = [p for p in str(text).split(",") if p.strip()]
    if len(parts) < 2 or any(p.count(":") != 1 for p in parts):
        raise ConfigError(f"--pairs {text!r} is not FRAME:STATE,FRAME:STATE,... with at least two pairs "
                          "(e.g. --pairs 0:pristine,9:charge1)")
    pairs = [(_index(f, frames, "frame"), _index(s, states, "state")) for f, s in (p.split(":") for p in parts)]
    for k, what in ((0, "frame"), (1, "state")):
        seen = [p[k] for p in pairs]
        if len(set(seen)) != len(seen):
            raise ConfigError(f"--pairs {text!r} names a {what} twice; pair each frame with one state")
    return pairs


def default_pairs(n_frames: int, n_states: int) -> list[tuple[int, int]]:
    """The contract's default: the first frame with the first state, the last frame with the
    second state."""
    if n_frames < 2 or n_states < 2:
        raise InputError(f"a change needs two frames and two states; the results have {n_frames} frame(s) and "
                         f"{n_states} state(s)")
    return [(0, 0), (n_frames - 1, 1)]


def pairs_by_charge(frame_charge_mAh: np.ndarray, state_charge_mAh: np.ndarray, *,
                    tolerance_mAh: float | None = None) -> list[tuple[int, int]]:
    """Every state paired with the frame whose cell charge is nearest to the state's (both
    from the cell's timeline), when within ``tolerance_mAh`` (default: 5 % of the frames' charge
    span) and later than the previous pair's frame (time runs one way: after a discharge the
    charge comes back to values an earlier frame had).

    Raises
    ------
    InputError
        Fewer than two states find a frame.

    Examples
    --------
    >>> pairs_by_charge(np.array([0.0, 0.01, 0.02, 0.03]), np.array([0.0, 0.031]))
    [(0, 0), (3, 1)]
    >>> pairs_by_charge(np.array([0.0, 0.01, 0.02, 0.03]), np.array([0.0, 0.031, 0.004]))  # discharged: no frame
    [(0, 0), (3, 1)]
    """
    fq = np.asarray(frame_charge_mAh, dtype=np.float64)
    sq = np.asarray(state_charge_mAh, dtype=np.float64)
    span = float(np.nanmax(fq) - np.nanmin(fq)) if np.isfinite(fq).any() else 0.0
    tol = 0.05 * span if tolerance_mAh is None else float(tolerance_mAh)
    pairs: list[tuple[int, int]] = []
    for s, q in enumerate(sq):
        if not np.isfinite(q) or not np.isfinite(fq).any():
            continue
        f = int(np.nanargmin(np.abs(fq - q)))
        if abs(fq[f] - q) <= tol and (not pairs or f > pairs[-1][0]):
            pairs.append((f, s))
    if len(pairs) < 2:
        raise InputError(f"only {len(pairs)} state(s) match a frame by the cell's charge (within {tol:.3g} mAh); "
                         "give the pairs with --pairs FRAME:STATE,...")
    return pairs

"""Benchmark: the cell's timeline against the targets of issue 15. Prints one JSON object.

Run (the OpenBLAS core-type override of the machine env slows numpy):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/echem.py [--repeat N]

(a) Reading the 46,102-point 5-cycle GCPL ``.mpr`` of the navani 0.1.22 sdist
    (``jdb11-1_c3_gcpl_5cycles_2V-3p8V_C-24_data_C09.mpr``, fetched with pip into the tests' cache
    like the tests do) with ``ionscope.io.load_cycler`` (target < 0.5 s), beside the chosen
    library's own read (``galvani.BioLogic.MPRfile``, datalab-org-galvani) in the same run; and
    the other navani cycler files (.nda, .ndax, .xlsx). Best of ``--repeat``, warm (a first call
    in a fresh process also pays the one-time imports: reported as ``first_call_s``).
(b) Capacities against the instrument's own: EC-Lab's ``Q charge/discharge/mA.h`` per half cycle
    of that file against ``ionscope.echem``'s (target 0.1 %).
(c) Attaching the timeline to a 157-frame series (the ``licoo2`` twin and its cycler log):
    ``ionscope.timeline.attach_cycler`` (target < 50 ms), best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from _timing import timed_best

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import fetch_real_file  # noqa: E402

from ionscope import __version__  # noqa: E402

NAVANI = "navani==0.1.22"
GCPL = "Example_data/jdb11-1_c3_gcpl_5cycles_2V-3p8V_C-24_data_C09.mpr"
OTHERS = ("Example_data/test.nda", "Example_data/test.ndax",
          "Example_data/bs542_004_gr_li_50ua_50mv_1v_191020_Channel_11.xlsx")
TARGETS = {"mpr_read_s": 0.5, "capacity_rel_error": 1e-3, "timeline_s": 0.05}


def reading(repeat: int) -> dict:
    from galvani import BioLogic

    from ionscope import io

    path = fetch_real_file(NAVANI, GCPL)
    start = time.perf_counter()
    log = io.load_cycler(path)
    first = time.perf_counter() - start
    t_ours, log = timed_best(lambda: io.load_cycler(path), repeat=repeat)
    t_lib, _ = timed_best(lambda: BioLogic.MPRfile(str(path), error_on_unknown_column=False).data, repeat=repeat)
    others = {}
    for member in OTHERS:
        other = fetch_real_file(NAVANI, member)
        io.load_cycler(other)
        others[Path(member).name] = {"records": None, "read_s": timed_best(lambda p=other: io.load_cycler(p), repeat)[0]}
        others[Path(member).name]["records"] = int(io.load_cycler(other).sizes["time"])
    return {"file": Path(GCPL).name, "records": int(log.sizes["time"]), "read_s": t_ours, "first_call_s": first,
            "galvani_read_s": t_lib, "others": others}, log


def capacities(log) -> dict:
    """Our half-cycle capacities against EC-Lab's own ``Q charge/discharge`` column."""
    from ionscope.echem import summarize

    halves = summarize(log)[1]
    own = [c for c in log.data_vars if "q_charge_discharge" in c or c.startswith("q_charge")]
    if not own:
        return {"error": f"no EC-Lab capacity column among {list(log.data_vars)}"}
    q = np.asarray(log[own[0]].values, dtype=np.float64)
    hc = np.asarray(log["half_cycle"].values)
    ecl = np.array([np.abs(q[hc == h]).max() for h in np.unique(hc)])
    ours = np.array([row["capacity_mAh"] for row in halves])
    n = min(ecl.size, ours.size)
    keep = ecl[:n] > 1e-3
    rel = np.abs(ours[:n][keep] / ecl[:n][keep] - 1)
    return {"column": own[0], "half_cycles": int(n), "max_rel_error": float(rel.max()),
            "ours_mAh": ours[:n].round(6).tolist(), "ec_lab_mAh": ecl[:n].round(6).tolist()}


def timeline(repeat: int) -> dict:
    from ionscope import io
    from ionscope.simulate import cycler_table, simulate
    from ionscope.timeline import attach_cycler

    ds = simulate("licoo2", seed=0)
    series = ds["li_fraction"]
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "ionscope-bench-echem-cycler.csv"
    tmp.write_text(cycler_table(ds))
    log = io.load_cycler(tmp)
    start = "2024-05-01T10:00:00+02:00"  # the twin's series and log share one clock; any absolute start
    t, out = timed_best(lambda: attach_cycler(series, log, start=start), repeat=repeat)
    t_file, _ = timed_best(lambda: attach_cycler(series, tmp, start=start), repeat=repeat)
    tmp.unlink()
    got = np.asarray(out["cell_voltage"].values, dtype=np.float64)
    return {"frames": int(series.sizes["time"]), "log_records": int(log.sizes["time"]), "attach_s": t,
            "attach_with_reading_the_csv_s": t_file,
            "max_voltage_error_V": float(np.nanmax(np.abs(got - np.asarray(ds["voltage"].values)))),
            "states_equal": bool(np.array_equal(out["state"].values, ds["state"].values))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    start = time.perf_counter()
    read, log = reading(args.repeat)
    cap = capacities(log)
    tl = timeline(args.repeat)
    holds = {"mpr_read_s": read["read_s"] < TARGETS["mpr_read_s"],
             "capacity_rel_error": cap.get("max_rel_error", 1.0) <= TARGETS["capacity_rel_error"],
             "timeline_s": tl["attach_s"] < TARGETS["timeline_s"]}
    print(json.dumps({
        "benchmark": "echem", "command": "benchmarks/echem.py", "ionscope_version": __version__,
        "python": platform.python_version(), "cpus": os.cpu_count(), "targets": TARGETS, "holds": holds,
        "reading": read, "capacities": cap, "timeline": tl, "wall_s": time.perf_counter() - start,
    }, indent=1))


if __name__ == "__main__":
    sys.exit(main())

"""BioLogic EC-Lab files into the cycler model: ``.mpr`` (binary) and ``.mpt`` (its text export).

``.mpr`` data are read with ``galvani`` from the maintained fork ``datalab-org-galvani`` (measured
against upstream ``galvani`` 0.5 and ``yadg`` 7 on the navani sdist's five EC-Lab files: all three
read them; the fork maps unknown column IDs with a warning where upstream raises, and yadg 7
needs pandas < 3 and is ~5x slower). The header (the "VMP Set" module) is read here at the
offsets EC-Lab uses: technique, comments, active material mass (mg), electrode area (cm2),
characteristic mass, molecular weight, battery capacity, reference electrode. EC-Lab writes
0.001 into unset mass and area fields: that placeholder is not reported as ``active_mass_mg`` /
``area_cm2`` (it stays in ``settings``).

Columns: the measured current ``I/mA`` (or ``<I>/mA``) when the file records it; a log that
records only ``dq/mA.h`` (GCPL files recording on dq or dt without I) gets the mean current of
each record's interval, ``dq / dt``. The net charge is ``(Q-Qo)/mA.h`` (or the running sum of
``dq``) from the first record; EC-Lab's own ``Q charge/discharge/mA.h``, ``half cycle`` and every
other column are kept under clean names. Positive current is oxidation at the working electrode,
i.e. charge of a cathode half cell (ionscope's convention). The file's ``mode`` flag 3 (rest)
marks rest records; ``cycle number`` is used when recorded. EC-Lab stores local time without a
zone: ``start_time`` is naive unless a ``timezone`` is given to :func:`load_cycler`.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ionscope.errors import FormatError, InputError, IonscopeWarning, MissingReaderError
from ionscope.io._cycler import RawLog, _head

#: EC-Lab technique IDs (first byte of the settings module).
TECHNIQUES = {0x04: "GCPL", 0x06: "CV", 0x0B: "OCV", 0x16: "MP", 0x18: "CA", 0x19: "CP", 0x1C: "WAIT",
              0x1D: "PEIS", 0x1E: "GEIS", 0x30: "CV", 0x32: "ZIR", 0x33: "CVA", 0x6C: "LSV", 0x75: "coV",
              0x76: "coC", 0x77: "GCPL", 0x7F: "MB", 0x88: "BCD"}
#: EC-Lab's placeholder in unset mass/area fields (as float32).
_UNSET = float(np.float32(0.001))

#: Flag names in the order of :mod:`galvani`'s ``flags`` byte.
_FLAGS = ("mode", "ox/red", "error", "control changes", "Ns changes", "counter inc.")


# --------------------------------------------------------------------------- shared (mpr and mpt)


def _eclab_log(cols: dict[str, np.ndarray], attrs: dict[str, Any], path: Path) -> RawLog:
    """A :class:`RawLog` from EC-Lab columns (named as EC-Lab names them)."""
    where = f"cycler log {path}"
    names = list(cols)
    used: set[str] = set()

    def take(*options: str) -> str | None:
        for name in options:
            if name in cols:
                used.add(name)
                return name
        return None

    t_name = take("time/s")
    v_name = take("Ewe/V", "<Ewe>/V", "Ecell/V", "<Ecell>/V", "Ewe-Ece/V")
    if t_name is None or v_name is None:
        what = "time (time/s)" if t_name is None else "voltage (Ewe/V, Ecell/V)"
        raise InputError(f"{where} has no {what} column; it has {', '.join(names)}")
    t = np.asarray(cols[t_name], dtype=np.float64)
    mode = np.asarray(cols["mode"]) if "mode" in cols else None
    i_name = take("I/mA", "<I>/mA")
    dq_name = take("dq/mA.h", "dQ/mA.h")
    q_name = take("(Q-Qo)/mA.h")
    current_source = "file"
    if i_name is not None:
        current = np.asarray(cols[i_name], dtype=np.float64)
    elif dq_name is not None or q_name is not None:
        dq = (np.asarray(cols[dq_name], dtype=np.float64) if dq_name is not None
              else np.diff(np.asarray(cols[q_name], dtype=np.float64), prepend=cols[q_name][0]))
        current = _current_from_dq(t, dq, mode, cols.get("control/V/mA"))
        current_source = "dq/dt"
    elif attrs.get("technique") == "OCV" or (mode is not None and np.all(mode == 3)):
        current = np.zeros(t.shape)  # open circuit: no current flows, and EC-Lab records none
        current_source = "open circuit (0)"
    else:
        raise InputError(f"{where} has no current column (I/mA, <I>/mA) nor charge increments (dq/mA.h) to "
                         f"derive it from; it has {', '.join(names)}")
    raw = RawLog(time_s=t, voltage_V=np.asarray(cols[v_name], dtype=np.float64), current_mA=current, attrs=attrs)
    raw.attrs["current_source"] = current_source
    if q_name is not None:
        raw.charge_mAh = np.asarray(cols[q_name], dtype=np.float64)
    elif dq_name is not None:
        raw.charge_mAh = np.cumsum(np.asarray(cols[dq_name], dtype=np.float64))
    if q_name is not None:
        raw.extras["charge_instrument"] = (np.asarray(cols[q_name], dtype=np.float64), "mAh", q_name)
    if dq_name is not None:
        raw.extras[dq_name] = (np.asarray(cols[dq_name], dtype=np.float64), "mAh", dq_name)
    c_name = take("cycle number")
    if c_name is not None:
        raw.cycle = np.asarray(cols[c_name], dtype=np.float64)
    s_name = take("Ns")
    if s_name is not None:
        raw.step = np.asarray(cols[s_name])
    if mode is not None:
        raw.hint = np.where(mode == 3, 0, -1).astype(np.int8)
    for name in names:
        if name in used:
            continue
        values = np.asarray(cols[name])
        if values.dtype == bool:
            values = values.astype(np.int8)
        unit = {"control/V/mA": "V (CV) or mA (CC)", "control/V": "V", "control/mA": "mA"}.get(name)
        if unit is None:
            from ionscope.io._cycler import split_unit

            unit = split_unit(name)[1] or (name.rsplit("/", 1)[1] if "/" in name and name[0] != "(" else "")
        raw.extras[name] = (values, unit, name)
    return raw


def _current_from_dq(t: np.ndarray, dq_mAh: np.ndarray, mode: np.ndarray | None,
                     control: np.ndarray | None) -> np.ndarray:
    """Mean current of each record's interval, mA: ``dq / dt`` (the interval before the record);
    records without an interval (the first, dt = 0) take the next record's value, or 0 at rest."""
    dt_ = np.diff(t, prepend=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        current = np.where(dt_ > 0, dq_mAh * 3600.0 / dt_, np.nan)
    bad = ~np.isfinite(current)
    if bad.any():  # backward fill from the next good record
        idx = np.where(~bad, np.arange(current.size), current.size)
        nxt = np.minimum.accumulate(idx[::-1])[::-1]
        ok = nxt < current.size
        current[bad & ok] = current[nxt[bad & ok]]
        current[bad & ~ok] = 0.0
    if mode is not None:
        current[mode == 3] = 0.0
    return current


# --------------------------------------------------------------------------- .mpr


def _pascal(data: bytes, offset: int) -> str:
    if offset >= len(data):
        return ""
    n = data[offset]
    return data[offset + 1: offset + 1 + n].decode("latin-1", errors="replace").strip()


def _settings(module: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Technique and cell characteristics from the "VMP Set" module's data."""
    data = bytes(module["data"])
    f4 = (lambda o: float(struct.unpack_from("<f", data, o)[0]) if o + 4 <= len(data) else None)  # noqa: E731
    technique = TECHNIQUES.get(data[0]) if data else None
    settings: dict[str, Any] = {
        "technique_id": int(data[0]) if data else None,
        "comments": _pascal(data, 0x0007),
        "active_material_mass_mg": f4(0x0107),
        "at_x": f4(0x010B),
        "molecular_weight_g_per_mol": f4(0x010F),
        "atomic_weight_g_per_mol": f4(0x0113),
        "acquisition_start_x0": f4(0x0117),
        "electrode_material": _pascal(data, 0x011E),
        "electrolyte": _pascal(data, 0x01C0),
        "electrode_area_cm2": f4(0x0211),
        "reference_electrode": _pascal(data, 0x0215),
        "characteristic_mass_mg": f4(0x024C),
        "battery_capacity": f4(0x025C),
        "settings_module_version": int(module.get("version", -1)),
    }
    return technique, {k: v for k, v in settings.items() if v not in (None, "")}


def _set_value(value: float | None) -> float | None:
    """A mass/area field's value, or None for EC-Lab's unset placeholder (0.001) and junk."""
    if value is None or not np.isfinite(value) or value <= 0 or abs(value - _UNSET) < 1e-9:
        return None
    return float(value)


def read_mpr(path: Path) -> RawLog:
    """An EC-Lab ``.mpr`` file as a :class:`~ionscope.io._cycler.RawLog` (see the module docstring).

    Raises
    ------
    MissingReaderError
        ``galvani`` (``datalab-org-galvani``) is not installed.
    FormatError
        Not an EC-Lab file, or truncated.
    """
    try:
        from galvani import BioLogic
    except ModuleNotFoundError as exc:
        raise MissingReaderError.for_module(path, "BioLogic .mpr", exc) from None
    with open(path, "rb") as fh:
        magic = fh.read(len(b"BIO-LOGIC MODULAR FILE"))
    if magic != b"BIO-LOGIC MODULAR FILE":
        raise FormatError(f"cycler log {path}: not an EC-Lab .mpr file (it does not start with BIO-LOGIC MODULAR "
                          "FILE)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            mpr = BioLogic.MPRfile(str(path), error_on_unknown_column=False)
        except TypeError:  # upstream galvani: no such keyword (it raises on unknown columns)
            mpr = _mpr_upstream(BioLogic, path)
        except Exception as exc:  # galvani raises ValueError, struct.error, AssertionError, ...
            raise FormatError(f"cycler log {path}: not a readable EC-Lab .mpr file ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); is it truncated?") from None
    for w in caught:
        text = str(w.message)
        if "unknown" in text.lower() or "colID" in text:
            warnings.warn(f"cycler log {path}: {text}; the column is kept under its raw ID", IonscopeWarning,
                          stacklevel=4)
    data = mpr.data
    if data is None or len(data) == 0:
        raise FormatError(f"cycler log {path}: the EC-Lab file holds no data points; is it truncated?")
    cols: dict[str, np.ndarray] = {}
    for name in data.dtype.names:
        if name == "flags":
            for flag in _FLAGS:
                if flag in getattr(mpr, "flags_dict", {}):
                    cols[flag] = np.asarray(mpr.get_flag(flag))
        else:
            cols[name] = np.asarray(data[name])
    settings_mod = next((m for m in mpr.modules if bytes(m["shortname"]).strip() == b"VMP Set"), None)
    technique, settings = _settings(settings_mod) if settings_mod is not None else (None, {})
    settings["column_ids"] = [int(c) for c in np.asarray(getattr(mpr, "cols", []))]
    start = getattr(mpr, "timestamp", None) or getattr(mpr, "startdate", None)
    if isinstance(start, dt.date) and not isinstance(start, dt.datetime):
        start = dt.datetime.combine(start, dt.time())
    attrs = {"start_time": start, "technique": technique, "settings": settings,
             "active_mass_mg": _set_value(settings.get("active_material_mass_mg")),
             "area_cm2": _set_value(settings.get("electrode_area_cm2"))}
    return _eclab_log(cols, attrs, path)


def _mpr_upstream(BioLogic: Any, path: Path) -> Any:
    try:
        return BioLogic.MPRfile(str(path))
    except NotImplementedError as exc:  # upstream galvani: an unknown column ID
        raise FormatError(f"cycler log {path}: {exc}; the installed galvani cannot read it - install the maintained "
                          "fork (pip uninstall galvani; pip install datalab-org-galvani), which keeps unknown "
                          "columns") from None
    except Exception as exc:
        raise FormatError(f"cycler log {path}: not a readable EC-Lab .mpr file ({type(exc).__name__}: {exc}); "
                          "is it truncated?") from None


# --------------------------------------------------------------------------- .mpt


def is_mpt(path: Path) -> bool:
    """Whether a text file is an EC-Lab text export (first line ``EC-Lab ASCII FILE``)."""
    lines = _head(path, 1)
    return bool(lines) and lines[0].strip().upper().startswith("EC-LAB ASCII FILE")


_MPT_DATE = re.compile(r"Acquisition started on\s*:\s*(\d{1,2})/(\d{1,2})/(\d{4})\s+(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)")


def _number(text: str) -> float | None:
    m = re.match(r"\s*([-+]?\d+(?:[.,]\d*)?(?:[eE][-+]?\d+)?)", text)
    return float(m[1].replace(",", ".")) if m else None


def read_mpt(path: Path) -> RawLog:
    """An EC-Lab ``.mpt`` text export (``EC-Lab ASCII FILE``, ``Nb header lines : N``, then a
    tab-separated table; decimal points or commas) as a :class:`~ionscope.io._cycler.RawLog`."""
    import pandas as pd

    try:
        with open(path, encoding="latin-1", newline="") as fh:
            lines = [fh.readline() for _ in range(3)]
            m = re.search(r"Nb header lines\s*:\s*(\d+)", "".join(lines))
            if not lines[0].strip().upper().startswith("EC-LAB ASCII FILE") or m is None:
                raise FormatError(f"cycler log {path}: not an EC-Lab text export (no 'EC-Lab ASCII FILE' / "
                                  "'Nb header lines' at the top)")
            n_header = int(m[1])
            header = lines + [fh.readline() for _ in range(n_header - 3)]
    except OSError as exc:
        raise FormatError(f"cycler log {path}: cannot be read ({exc.strerror})") from None
    text = "".join(header)
    columns = [c for c in header[n_header - 1].rstrip("\r\n").split("\t")]
    if len(columns) < 2:
        raise FormatError(f"cycler log {path}: the header promises {n_header} lines but line {n_header} is not the "
                          "column row; is the file truncated or edited?")
    attrs: dict[str, Any] = {}
    m = _MPT_DATE.search(text)
    if m:
        month, day, year, hh, mm, ss = m.groups()
        sec = float(ss)
        attrs["start_time"] = dt.datetime(int(year), int(month), int(day), int(hh), int(mm), int(sec),
                                          int(round((sec - int(sec)) * 1e6)))
    settings: dict[str, Any] = {}
    for key, label, unit in (("active_material_mass_mg", "Mass of active material", "mg"),
                             ("electrode_area_cm2", "Electrode surface area", "cm"),
                             ("characteristic_mass_mg", "Characteristic mass", "mg")):
        m = re.search(rf"^{re.escape(label)}\s*:\s*([^\r\n]+)", text, re.MULTILINE)
        if m:
            value = _number(m[1])
            scale = {"g": 1e3, "mg": 1.0, "µg": 1e-3, "ug": 1e-3}.get(m[1].split()[-1], 1.0) if unit == "mg" else 1.0
            if value is not None:
                settings[key] = value * scale
    for label in ("Electrode material", "Electrolyte", "Reference electrode", "Comments"):
        m = re.search(rf"^{re.escape(label)}\s*:[ \t]*([^\r\n]*)", text, re.MULTILINE)
        if m and m[1].strip():
            settings[label.lower().replace(" ", "_")] = m[1].strip()
    technique = header[3].strip() if n_header > 4 and "Nb header" not in header[3] and header[3].strip() else None
    if technique is None:
        m = re.search(r"^(Galvanostatic Cycling with Potential Limitation|Modulo Bat|Open Circuit Voltage|"
                      r"Cyclic Voltammetry|Chronoamperometry|Chronopotentiometry|Potentio Electrochemical "
                      r"Impedance Spectroscopy)", text, re.MULTILINE)
        technique = m[1] if m else None
    attrs.update({"technique": technique, "settings": settings,
                  "active_mass_mg": _set_value(settings.get("active_material_mass_mg")),
                  "area_cm2": _set_value(settings.get("electrode_area_cm2"))})
    try:
        frame = pd.read_csv(path, sep="\t", skiprows=n_header - 1, encoding="latin-1", low_memory=False,
                            dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise FormatError(f"cycler log {path}: the EC-Lab table is not readable ({exc})") from None
    frame = frame.loc[:, [c for c in frame.columns if str(c).strip() and not str(c).startswith("Unnamed")]]
    if frame.empty:
        raise FormatError(f"cycler log {path}: the EC-Lab export holds no data rows; is it truncated?")
    cols = {}
    for name in frame.columns:
        col = frame[name].str.strip().str.replace(",", ".", regex=False)
        num = pd.to_numeric(col, errors="coerce")
        cols[str(name).strip()] = (num.to_numpy(dtype=np.float64, na_value=np.nan) if num.notna().any()
                                   else frame[name].to_numpy(dtype=str))
    t = cols.get("time/s")
    if t is not None and not np.isfinite(t[-1]):  # a last line cut in the middle
        keep = np.isfinite(t)
        cols = {k: v[keep] for k, v in cols.items()}
        warnings.warn(f"cycler log {path}: the last row is incomplete (truncated file?) and was dropped",
                      IonscopeWarning, stacklevel=4)
    if "mode" in cols:
        cols["mode"] = np.nan_to_num(cols["mode"], nan=-1).astype(np.int16)
    return _eclab_log(cols, attrs, path)

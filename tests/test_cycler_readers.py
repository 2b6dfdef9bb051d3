"""Cycler-log readers (ionscope.io.load_cycler): the model, the twins' CSV, column maps, careless input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ionscope import io
from ionscope.errors import ConfigError, FileMissingError, FormatError, InputError, IonscopeWarning
from ionscope.io._cycler import derive_cycles, derive_half_cycles, derive_state


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _twin_csv(tmp_path, current_A, dt=10.0):
    """A twin-style cycler.csv (time_s,voltage_V,current_A,charge_C) for a current profile."""
    i = np.asarray(current_A, dtype=np.float64)
    t = np.arange(i.size) * dt
    q = np.concatenate([[0.0], np.cumsum(0.5 * (i[1:] + i[:-1]) * dt)])
    v = 3.5 + 1e2 * q
    rows = ["time_s,voltage_V,current_A,charge_C"] + [f"{a:.10g},{b:.10g},{c:.10g},{d:.10g}"
                                                      for a, b, c, d in zip(t, v, i, q)]
    return _write(tmp_path / "cycler.csv", "\n".join(rows) + "\n"), t, i, q


# --------------------------------------------------------------------------- derivations


def test_state_half_cycle_cycle_derivation():
    # rest, charge, rest, discharge, charge, discharge (mA)
    i = np.array([0, 0, 1, 1, 0, -1, -1, 0, 1, 1, -1, 0], dtype=float)
    state = derive_state(i)
    assert state.tolist() == [0, 0, 1, 1, 0, 2, 2, 0, 1, 1, 2, 0]
    half = derive_half_cycles(state)
    assert half.tolist() == [1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4]
    assert derive_cycles(state, half).tolist() == [1] * 8 + [2] * 4
    # a log that starts with a discharge: that discharge is cycle 1, the next charge starts cycle 2
    s2 = derive_state(np.array([-1, -1, 1, 1, -1.0]))
    assert derive_cycles(s2, derive_half_cycles(s2)).tolist() == [1, 1, 2, 2, 2]
    # the file's rest steps win over noise in the current; fA currents still have a sign
    assert derive_state(np.array([1e-9, -1e-9, 1.0]), np.array([0, 0, -1])).tolist() == [0, 0, 1]
    assert derive_state(np.array([0, 1e-15, -1e-15])).tolist() == [0, 1, 2]
    assert derive_half_cycles(np.zeros(3, np.int8)).tolist() == [1, 1, 1]


# --------------------------------------------------------------------------- the twins' CSV


def test_twin_csv_model(tmp_path):
    i = np.r_[np.zeros(3), np.full(6, 2e-3), np.zeros(2), np.full(5, -2e-3), np.zeros(2)]
    path, t, i_A, q_C = _twin_csv(tmp_path, i)
    log = io.load_cycler(path)
    assert log.sizes == {"time": i.size}
    assert log["time"].attrs["units"] == "s" and log["time"].values[0] == 0.0
    np.testing.assert_allclose(log["current"].values, i_A * 1e3)  # mA
    assert log["current"].attrs["units"] == "mA" and log["charge"].attrs["units"] == "mAh"
    np.testing.assert_allclose(log["charge"].values, q_C / 3.6)  # C -> mAh
    assert log["charge"].attrs["source"] == "file"
    assert log["state"].dtype == np.int8 and log["state"].attrs["flag_meanings"] == "rest charge discharge"
    assert log["half_cycle"].values.max() == 2 and (log["cycle"].values == 1).all()
    assert log["cycle"].dtype == np.int32 and log["half_cycle"].dtype == np.int32
    assert log.attrs["source_format"] == "CSV" and log.attrs["primary"] == "voltage"
    assert "start_time" not in log.attrs
    assert '"ionscope.io.load"' in log.attrs["provenance"] and "sha256:" in log.attrs["provenance"]
    # open_dataset reaches the same reader for a cycler .csv
    same = io.open_dataset(path)
    np.testing.assert_array_equal(same["voltage"].values, log["voltage"].values)


def test_twin_csv_files(tmp_path):
    """The composite_cathode and licoo2 twins' logs as ionscope writes them (cycler_table)."""
    from ionscope.simulate import cycler_table, simulate

    ds = simulate("licoo2", seed=0)
    path = _write(tmp_path / "licoo2_cycler.csv", cycler_table(ds))
    log = io.load_cycler(path)
    np.testing.assert_allclose(log["voltage"].values, ds["cycler_voltage"].values)
    np.testing.assert_allclose(log["current"].values, ds["cycler_current"].values * 1e3)
    assert set(np.unique(log["state"].values)) == {0, 1, 2}  # charge, rest, discharge, rest
    assert log["half_cycle"].values.max() == 2 and log["cycle"].values.max() == 1
    # the file's net charge (C -> mAh); trapezoidal integration of its current agrees within one record
    np.testing.assert_allclose(log["charge"].values, ds["cycler_charge"].values / 3.6)
    q = np.concatenate([[0.0], np.cumsum(0.5 * np.diff(log["time"].values)
                                         * (log["current"].values[1:] + log["current"].values[:-1]))]) / 3600
    np.testing.assert_allclose(log["charge"].values, q, atol=5e-3 * np.abs(q).max())


def test_composite_cathode_csv(tmp_path):
    # the header and units the composite_cathode twin writes (time_s,voltage_V,current_A,charge_C)
    path = _write(tmp_path / "cycler.csv", "time_s,voltage_V,current_A,charge_C\n0,3,0,0\n1,3.1,1e-3,5e-4\n"
                  "2,3.2,1e-3,1.5e-3\n")
    log = io.load_cycler(path)
    np.testing.assert_allclose(log["charge"].values, [0, 5e-4 / 3.6, 1.5e-3 / 3.6])
    assert log["state"].values.tolist() == [0, 1, 1]


# --------------------------------------------------------------------------- other tables, column maps


def test_vendor_like_names_and_units(tmp_path):
    text = ("# exported\nTest_Time(s)\tVoltage(V)\tCurrent(mA)\tCycle_Index\tTemperature (C)\n"
            "0\t3.0\t0\t1\t25\n60\t3.1\t0.5\t1\t25\n120\t3.2\t0.5\t1\t25.1\n180\t3.1\t-0.5\t1\t25\n")
    log = io.load_cycler(_write(tmp_path / "log.txt", text))
    assert log["current"].values.tolist() == [0, 0.5, 0.5, -0.5]
    assert log["cycle"].attrs["source"] == "file"
    assert "temperature" in log and log["temperature"].attrs["raw_name"] == "Temperature (C)"
    np.testing.assert_allclose(log["charge"].values[-1], (0.25 * 60 + 0.5 * 60 + 0) / 3600)  # integrated


def test_column_map_and_units(tmp_path):
    text = "t [h],E,I,other\n0,3.0,0,x\n0.5,3.1,2,y\n1.0,3.2,2,z\n"
    path = _write(tmp_path / "log.csv", text)
    log = io.load_cycler(path, columns="time=t [h],voltage=E,current=I:uA")
    np.testing.assert_allclose(log["time"].values, [0, 1800, 3600])
    np.testing.assert_allclose(log["current"].values, [0, 2e-3, 2e-3])
    assert log["other"].values.tolist() == ["x", "y", "z"]
    log2 = io.load_cycler(path, columns={"time": "t [h]", "voltage": "E", "current": "I:mA"})
    np.testing.assert_allclose(log2["charge"].values[-1], 2 * 0.75)


def test_datetime_column_gives_start_and_timezone(tmp_path):
    text = ("Date Time,Voltage (V),Current (A)\n2024-05-01 10:00:00,3.0,0\n2024-05-01 10:00:30,3.1,0.001\n"
            "2024-05-01 10:01:00,3.2,0.001\n")
    path = _write(tmp_path / "log.csv", text)
    log = io.load_cycler(path)
    assert log.attrs["start_time"] == "2024-05-01T10:00:00"
    np.testing.assert_allclose(log["time"].values, [0, 30, 60])
    utc = io.load_cycler(path, timezone="Europe/Berlin")
    assert utc.attrs["start_time"] == "2024-05-01T08:00:00+00:00"
    assert io.load_cycler(path, timezone="+09:00").attrs["start_time"] == "2024-05-01T01:00:00+00:00"


# --------------------------------------------------------------------------- careless input


def test_careless_input(tmp_path):
    with pytest.raises(FileMissingError):
        io.load_cycler(tmp_path / "nothing.csv")
    with pytest.raises(FormatError, match="empty"):
        io.load_cycler(_write(tmp_path / "empty.csv", ""))
    with pytest.raises(FormatError, match="not a cycler log"):
        io.load_cycler(_write(tmp_path / "log.dat", "1,2,3\n"))
    with pytest.raises(FormatError, match="no header row"):
        io.load_cycler(_write(tmp_path / "numbers.csv", "1,2,3\n4,5,6\n"))
    # no current column: the error names the columns the file has
    with pytest.raises(InputError, match=r"no current column; it has time_s, voltage_V, temp"):
        io.load_cycler(_write(tmp_path / "nocurrent.csv", "time_s,voltage_V,temp\n0,3,25\n1,3,25\n"))
    # a column map naming a column that is not there
    path = _write(tmp_path / "log.csv", "t,E,I\n0,3,0\n1,3,1\n")
    with pytest.raises(InputError, match=r"names 'Ewe/V' for the voltage.*it has t, E, I"):
        io.load_cycler(path, columns="time=t,voltage=Ewe/V,current=I")
    with pytest.raises(ConfigError, match="unknown role"):
        io.load_cycler(path, columns="temperature=t")
    with pytest.raises(ConfigError, match="time zone"):
        io.load_cycler(path, columns="time=t,voltage=E,current=I:mA", timezone="Mars/Olympus")
    with pytest.raises(InputError, match="not numbers"):
        io.load_cycler(_write(tmp_path / "text.csv", "time_s,voltage_V,current_A\n0,3,0\n1,abc,1\n"))
    with pytest.raises(FormatError, match="at least two"):
        io.load_cycler(_write(tmp_path / "one.csv", "time_s,voltage_V,current_A\n0,3,0\n"))
    # a current without a unit is read as A, with a warning; a time zone without a start time warns
    with pytest.warns(IonscopeWarning, match="names no unit"):
        io.load_cycler(_write(tmp_path / "nounit.csv", "time_s,voltage_V,current\n0,3,0\n1,3,1\n"))
    with pytest.warns(IonscopeWarning, match="no start time"):
        io.load_cycler(_write(tmp_path / "ok.csv", "time_s,voltage_V,current_mA\n0,3,0\n1,3,1\n"), timezone="UTC")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        io.load_cycler(tmp_path / "ok.csv")


# --------------------------------------------------------------------------- real files (navani 0.1.22 sdist)

NAVANI = "navani==0.1.22"
GCPL = "jdb11-1_c3_gcpl_5cycles_2V-3p8V_C-24_data_C09.mpr"


@pytest.fixture(scope="module")
def navani_file():
    from conftest import fetch_real_file

    pytest.importorskip("galvani")
    return lambda name: fetch_real_file(NAVANI, f"Example_data/{name}")


def _half_cycle_capacities(log):
    """|charge passed| per half cycle (from the last record of the previous one), mAh."""
    q, h = log["charge"].values, log["half_cycle"].values
    ends = np.flatnonzero(np.diff(h)).tolist() + [h.size - 1]
    starts = [0] + [e for e in ends[:-1]]
    return np.abs(q[ends] - q[starts])


def test_mpr_gcpl_against_ec_lab(navani_file):
    """The 5-cycle GCPL (EC-Lab 2020): our half cycles are EC-Lab's own, and our capacities equal
    EC-Lab's "Q charge/discharge/mA.h" to 0.1 % (from the net charge and from integrating |I| dt)."""
    path = navani_file(GCPL)
    log = io.load_cycler(path)  # its speed (target < 0.5 s) is measured by benchmarks/echem.py, not here
    assert log.sizes["time"] == 46102 and log.attrs["source_format"] == "BioLogic MPR"
    assert log.attrs["technique"] == "GCPL" and log.attrs["start_time"] == "2020-10-26T12:49:58"
    assert log.attrs["active_mass_mg"] == 7000.0 and "area_cm2" not in log.attrs  # area is EC-Lab's 0.001 placeholder
    import json

    settings = json.loads(log.attrs["settings"])
    assert settings["molecular_weight_g_per_mol"] == pytest.approx(90.93) and settings["characteristic_mass_mg"] == 10
    assert log.attrs["current_source"] == "dq/dt"  # this file records dq, not I
    # EC-Lab's half-cycle numbers (0, 2, 3, ..., 12) map one to one onto ours (1..13)
    pairs = set(zip(log["half_cycle"].values.tolist(), log["half_cycle_file"].values.tolist()))
    assert pairs == {(1, 0)} | {(k, k) for k in range(2, 14)}
    assert log["cycle"].values.max() == 7  # a first discharge, 5 charge+discharge cycles, a last charge
    h = log["half_cycle"].values
    ends = np.r_[np.flatnonzero(np.diff(h)), h.size - 1]
    instrument = np.abs(log["q_charge_discharge"].values[ends])
    np.testing.assert_allclose(_half_cycle_capacities(log), instrument, rtol=1e-3)
    t, i = log["time"].values, log["current"].values
    trap = [np.sum(0.5 * np.abs(i[a:b + 1][1:] + i[a:b + 1][:-1]) * np.diff(t[a:b + 1])) / 3600
            for a, b in zip(np.r_[0, ends[:-1]], ends)]
    np.testing.assert_allclose(trap, instrument, rtol=1e-3)
    np.testing.assert_array_equal(log["state"].values[log["mode"].values == 3], 0)
    # EC-Lab's local time -> UTC
    assert io.load_cycler(path, timezone="Europe/Paris").attrs["start_time"] == "2020-10-26T11:49:58+00:00"


def test_mpr_2023_files(navani_file):
    """The EC-Lab 2023 files: OCV (no current: 0, rest), modulo bat (measured I/mA, CV hold)."""
    for name in ("00_test_01_OCV_C01.mpr", "00_test_02_OCV_C01.mpr"):
        log = io.load_cycler(navani_file(name))
        assert log.attrs["technique"] == "OCV" and log.sizes["time"] == 2
        assert (log["current"].values == 0).all() and (log["state"].values == 0).all()
        assert log.attrs["start_time"].startswith("2023-12-07T14:22:")
    log = io.load_cycler(navani_file("00_test_04_MB_C01.mpr"))
    assert log.attrs["technique"] == "MB" and log.sizes["time"] == 1501 and log.attrs["current_source"] == "file"
    assert "active_mass_mg" not in log.attrs  # EC-Lab's 0.001 mg placeholder
    # the file's clock starts 16.17 s before its first record: start_time is that record's
    assert log.attrs["time_offset_s"] == pytest.approx(16.1674, abs=1e-3)
    assert log.attrs["start_time"] == "2023-12-08T09:50:08.513400"
    assert (log["state"].values == 2).all()  # a potential hold with a cathodic current
    np.testing.assert_allclose(log["charge"].values[-1], log["q_charge_discharge"].values[-1], rtol=1e-6)
    assert io.load_cycler(navani_file("00_test_02_MB_C01.mpr")).sizes["time"] == 11


def test_mpr_careless(navani_file, tmp_path):
    data = navani_file("00_test_02_MB_C01.mpr").read_bytes()
    cut = _write(tmp_path / "cut.mpr", "")
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(FormatError, match="truncated"):
        io.load_cycler(cut)
    junk = tmp_path / "junk.mpr"
    junk.write_bytes(b"\x00\x01" * 100)
    with pytest.raises(FormatError, match="not an EC-Lab"):
        io.load_cycler(junk)
    # an unknown column ID (the half-cycle column's 468 renamed 999): kept under its raw ID, with a warning
    import struct

    ids = [1, 2, 3, 21, 31, 65, 131, 39, 4, 19, 6, 8, 7, 13, 74, 467, 468]
    old = struct.pack(f"<{len(ids)}H", *ids)
    assert data.count(old) == 1
    odd = tmp_path / "odd.mpr"
    odd.write_bytes(data.replace(old, struct.pack(f"<{len(ids)}H", *ids[:-1], 999)))
    with pytest.warns(IonscopeWarning, match="999"):
        log = io.load_cycler(odd)
    assert "unknown_colid_999" in log and log.sizes["time"] == 11


def _halves(log):
    """(state, |charge passed|) of each half cycle."""
    q, h, st = log["charge"].values, log["half_cycle"].values, log["state"].values
    ends = np.r_[np.flatnonzero(np.diff(h)), h.size - 1]
    starts = np.r_[0, ends[:-1]]
    states = [np.bincount(st[a:b + 1], minlength=3)[1:].argmax() + 1 for a, b in zip(starts, ends)]
    return states, np.abs(q[ends] - q[starts])


def test_neware(navani_file):
    """test.nda (2020, CC) and test.ndax (2024, CCCV): Neware's own per-step capacities give the net
    charge, so our half-cycle capacities equal them; step types mark rests; the local start time."""
    pytest.importorskip("NewareNDA")
    log = io.load_cycler(navani_file("test.nda"))
    assert log.attrs["source_format"] == "Neware NDA" and log.sizes["time"] == 439
    assert log.attrs["start_time"] == "2020-03-25T11:16:50"
    states, caps = _halves(log)
    assert states == [2, 1, 2] and log["cycle"].values.tolist()[-1] == 2
    step_caps = [6.530555e-05, 6.965278e-04, 7.009194e-03]  # Neware's Charge/Discharge_Capacity at each step's end
    np.testing.assert_allclose(caps, step_caps, rtol=1e-5)
    assert log["time"].values[-1] == pytest.approx(721.6, abs=1e-3)  # the sum of the step times
    assert (log["state"].values[log["step_type"].values == "Rest"] == 0).all()
    log = io.load_cycler(navani_file("test.ndax"))
    assert log.attrs["source_format"] == "Neware NDAX" and log.sizes["time"] == 1464
    states, caps = _halves(log)
    assert states == [1, 2]
    np.testing.assert_allclose(caps, [0.5930392, 0.6254508], rtol=1e-5)
    assert log.attrs["start_time"] == "2024-02-01T20:24:23" and log["time"].values[-1] == 43800.0


def test_xlsx_and_maccor(navani_file, tmp_path):
    pytest.importorskip("python_calamine")
    # Arbin: Gr/Li half cell, lithiation (discharge) first; start from Date_Time; net charge from its capacities
    log = io.load_cycler(navani_file("bs542_004_gr_li_50ua_50mv_1v_191020_Channel_11.xlsx"))
    assert log.attrs["source_format"] == "Arbin XLSX" and log.sizes["time"] == 4526
    assert log.attrs["start_time"] == "2020-10-19T11:31:46.582000"
    states, caps = _halves(log)
    assert states == [2, 1, 2, 1]
    cc, dc = log["charge_capacity"].values * 1e3, log["discharge_capacity"].values * 1e3  # Arbin's, Ah -> mAh
    np.testing.assert_allclose([caps[0] + caps[2], caps[1] + caps[3]], [dc[-1], cc[-1]], rtol=1e-6)
    # LAND: our half-cycle capacities are the ones in its own Cycle sheet (discharge-first cycles, 0.1 uAh digits)
    log = io.load_cycler(navani_file("NJK_CC_156_C30_C_x30.xlsx"))
    assert log.attrs["source_format"] == "LAND XLSX" and log.sizes["time"] == 62305
    states, caps = _halves(log)
    assert states[:4] == [2, 1, 2, 1]
    land = [0.0256, 0.0176, 0.0174, 0.0165, 0.0168, 0.0166]  # Cycle sheet: D1, C1, D2, C2, D3, C3
    np.testing.assert_allclose(caps[:6], land, atol=1.5e-4)
    # Maccor: unsigned Amps signed by State; 4 half cycles as navani documents
    log = io.load_cycler(navani_file("maccor_example.txt"))
    assert log.attrs["source_format"] == "Maccor" and log.sizes["time"] == 37
    assert log["half_cycle"].values.max() == 4 and "start_time" not in log.attrs  # a 12-hour clock is not guessed
    assert (log["current"].values[log["state"].values == 2] < 0).all()
    # Arbin .res needs mdbtools
    import shutil

    from ionscope.errors import MissingReaderError

    if shutil.which("mdb-export") is None:
        with pytest.raises(MissingReaderError, match="mdbtools"):
            io.load_cycler(navani_file("arbin_example.res"))
    else:
        assert io.load_cycler(navani_file("arbin_example.res")).attrs["source_format"] == "Arbin RES"
    # a truncated workbook
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(navani_file("bs542_004_gr_li_50ua_50mv_1v_191020_Channel_11.xlsx").read_bytes()[:5000])
    with pytest.raises(FormatError, match="truncated"):
        io.load_cycler(cut)


def test_mpt_text_export(tmp_path):
    """An EC-Lab .mpt written here in EC-Lab's documented layout (no real .mpt ships in the navani sdist):
    header count, mass/area lines, local start time, decimal commas."""
    header = ["EC-Lab ASCII FILE", "Nb header lines : 8", "", "Galvanostatic Cycling with Potential Limitation",
              "Acquisition started on : 10/26/2020 12:49:58.000", "Mass of active material : 7,000 mg",
              "Electrode surface area : 1,130 cm²",
              "mode\tox/red\terror\tcontrol changes\tNs\ttime/s\tEwe/V\tI/mA\tdq/mA.h\t(Q-Qo)/mA.h\tcycle number\t"]
    rows = ["3\t1\t0\t0\t0\t0,0\t3,000\t0,000\t0,0\t0,0\t0,0000000E+000\t",
            "1\t1\t0\t1\t1\t10,0\t3,100\t0,500\t0,001388889\t0,001388889\t0,0000000E+000\t",
            "1\t1\t0\t0\t1\t20,0\t3,200\t0,500\t0,001388889\t0,002777778\t0,0000000E+000\t",
            "1\t0\t0\t1\t2\t30,0\t3,100\t-0,500\t-0,001388889\t0,001388889\t0,0000000E+000\t"]
    path = tmp_path / "run.mpt"
    path.write_bytes(("\r\n".join(header + rows) + "\r\n").encode("latin-1"))
    log = io.load_cycler(path)
    assert log.attrs["source_format"] == "BioLogic MPT" and log.sizes["time"] == 4
    assert log.attrs["start_time"] == "2020-10-26T12:49:58"
    assert log.attrs["active_mass_mg"] == 7.0 and log.attrs["area_cm2"] == pytest.approx(1.13)
    np.testing.assert_allclose(log["current"].values, [0, 0.5, 0.5, -0.5])
    np.testing.assert_allclose(log["charge"].values, [0, 1 / 720, 2 / 720, 1 / 720], rtol=1e-6)
    assert log["state"].values.tolist() == [0, 1, 1, 2] and log["cycle"].values.tolist() == [1] * 4
    assert log["step"].values.tolist() == [0, 1, 1, 2]
    utc = io.load_cycler(path, timezone="+09:00")
    assert utc.attrs["start_time"] == "2020-10-26T03:49:58+00:00"
    # the same bytes as .txt are recognised by their first line
    txt = tmp_path / "run.txt"
    txt.write_bytes(path.read_bytes())
    assert io.load_cycler(txt).attrs["source_format"] == "BioLogic MPT"


def test_a_table_cut_inside_its_last_row_is_refused_but_one_without_a_final_newline_is_read(tmp_path):
    from ionscope.errors import FormatError
    from ionscope.io import load_cycler

    rows = "time_s,voltage_V,current_mA\n" + "".join(f"{10 * k}.000,3.{k:06d},-0.0005\n" for k in range(20))
    (tmp_path / "whole.csv").write_text(rows.rstrip("\n"))  # complete, just no final line break
    assert load_cycler(tmp_path / "whole.csv").sizes["time"] == 20
    (tmp_path / "cut.csv").write_text(rows[: rows.rindex("-0.0005") + 2])  # ends "...,-0"
    with pytest.raises(FormatError, match="cut while written"):
        load_cycler(tmp_path / "cut.csv")

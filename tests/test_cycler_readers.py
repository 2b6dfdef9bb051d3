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

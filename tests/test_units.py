"""The one units table and the declared parameter constraints."""

import numpy as np
import pytest

from ionscope.errors import ConfigError, InputError
from ionscope.units import energy_to_ev, length_to_nm, normalise_unit, require_length_to_nm, time_to_s, unit_kind
from ionscope.validation import Interval, Options, check_parameter, described, validate_params


@pytest.mark.parametrize(
    ("unit", "nm"),
    [("nm", 1.0), ("NM", 1.0), ("µm", 1e3), ("μm", 1e3), ("um", 1e3), ("micron", 1e3), ("Å", 0.1),
     ("\u212b", 0.1), ("angstrom", 0.1), ("A", 0.1), ("pm", 1e-3), ("mm", 1e6), ("m", 1e9), (" nm ", 1.0)],
)
def test_every_spelling_of_a_length_converts_to_nm(unit, nm):
    assert length_to_nm(unit) == nm
    assert unit_kind(unit) == "length"


def test_case_is_kept_where_it_carries_meaning():
    # meV and MeV differ by 1e9; ms and Ms, mm and Mm likewise: never case-folded into each other
    assert energy_to_ev("meV") == 1e-3
    assert energy_to_ev("MeV") == 1e6
    assert energy_to_ev("EV") == 1.0 and energy_to_ev("KeV") == 1e3
    assert length_to_nm("Mm") is None
    assert time_to_s("ms") == 1e-3 and time_to_s("Ms") is None


@pytest.mark.parametrize("unit", ["px", "", None, "V", "rad", "a.u.", "counts"])
def test_non_lengths_are_none_and_refused_with_the_axis_named(unit):
    assert length_to_nm(unit) is None
    with pytest.raises(InputError, match="the position axis .* not a length"):
        require_length_to_nm(unit, "the position axis")


def test_time_and_mass_kinds():
    assert time_to_s("min") == 60.0 and time_to_s("us") == 1e-6 and time_to_s("sec") == 1.0
    assert unit_kind("m/z") == "mass" and unit_kind("Da") == "mass"
    assert normalise_unit("um") == "µm" and normalise_unit("Angstrom") == "Å"


def test_bad_parameters_raise_config_error_that_is_a_value_error():
    @validate_params({
        "kv": [Interval(float, 0, None, closed="neither", unit="kV")],
        "n": [Interval(int, 1, None)],
        "method": [Options({"mlls", "sasb"})],
        "seed": [Interval(int, 0, None), None],
    })
    def f(kv, n=3, method="mlls", seed=None):
        return kv * n

    assert f(200.0, n=np.int64(2)) == 400.0
    assert f.parameter_constraints["n"][0].lo == 1
    for kwargs, text in [
        ({"kv": 0}, r"parameter 'kv' must be a number in \(0, inf\) kV, got 0"),
        ({"kv": float("nan")}, "'kv'"),
        ({"kv": True}, "'kv'"),
        ({"kv": 1, "n": 2.0}, r"'n' must be an integer in \[1, inf\)"),
        ({"kv": 1, "method": "MLLS"}, "one of 'mlls', 'sasb'"),
        ({"kv": 1, "seed": -1}, "or None"),
    ]:
        with pytest.raises(ConfigError, match=text) as info:
            f(**kwargs)
        assert isinstance(info.value, ValueError)
        assert str(info.value).startswith("f: ")


def test_predicate_constraints_describe_themselves():
    @described("a (lo, hi) pair with lo < hi")
    def window(value):
        return isinstance(value, tuple) and len(value) == 2 and value[0] < value[1]

    check_parameter("window", (1, 2), [window])
    with pytest.raises(ConfigError, match=r"'window' must be a \(lo, hi\) pair with lo < hi, got \(2, 1\)"):
        check_parameter("window", (2, 1), [window])


def test_constraints_must_name_real_parameters():
    with pytest.raises(TypeError, match="unknown parameters"):
        validate_params({"nope": [int]})(lambda x: x)

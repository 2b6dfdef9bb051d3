"""The public API never loses a name: every module and name that a released layout exported
(its ``__all__``) still imports from where it was, moved names through deprecation-free aliases.

``data/public_api_v0.1.0.json`` lists the modules and their ``__all__`` at commit 2133159, before
the one-library-one-shape refactor (issue 11).
"""

import importlib
import json
import warnings
from pathlib import Path

import pytest

API = json.loads((Path(__file__).parent / "data" / "public_api_v0.1.0.json").read_text())
#: Names that still import but warn: deprecated, with their replacement.
DEPRECATED = {("ionscope.eels.energy", "ENERGY_UNITS_TO_EV")}


@pytest.mark.parametrize("module", sorted(API))
def test_every_released_name_still_imports(module):
    mod = importlib.import_module(module)
    missing = []
    for name in API[module]:
        with warnings.catch_warnings():
            warnings.simplefilter("error" if (module, name) not in DEPRECATED else "ignore")
            if not hasattr(mod, name):
                missing.append(name)
    assert not missing, f"{module} lost {missing}"


def test_the_deprecated_names_warn_and_name_their_replacement():
    mod = importlib.import_module("ionscope.eels.energy")
    with pytest.warns(DeprecationWarning, match="ionscope.units.energy_to_ev"):
        assert mod.ENERGY_UNITS_TO_EV["kev"] == 1e3

"""Print ``name==floor`` pins for every dependency pyproject.toml declares with a ``>=`` floor.

Used by ``make test-min``: installing with these constraints checks that the declared minimum
versions really work. Usage: python tools/min_constraints.py [EXTRA ...] > min-constraints.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*(;.*)?$")


def floors(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for req in requirements:
        name, _extras, spec, _marker = REQ.match(req).groups()
        floor = [s.strip()[2:].strip() for s in spec.split(",") if s.strip().startswith(">=")]
        if floor:
            pins[re.sub(r"[-_.]+", "-", name).lower()] = floor[0]
    return pins


def main(extras: list[str]) -> None:
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    for name, version in sorted(floors(reqs).items()):
        print(f"{name}=={version}")


if __name__ == "__main__":
    main(sys.argv[1:])

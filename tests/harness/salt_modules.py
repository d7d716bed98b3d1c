"""This repository's Salt modules imported as plain Python (no Salt loader),
for pure logic tests and for seeding data where no Salt context is needed."""

import importlib.util
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]


def load(kind, name):
    """Import REPO/_KIND/NAME.py (KIND: modules or states) as a fresh module object."""
    spec = importlib.util.spec_from_file_location(f"_{kind}_{name}_plain", REPO / f"_{kind}" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

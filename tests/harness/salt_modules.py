"""This repository's Salt modules imported as plain Python (no Salt loader),
for pure logic tests and for seeding data where no Salt context is needed."""

import importlib.util
import pathlib
import re
import sys
import types

REPO = pathlib.Path(__file__).resolve().parents[2]


def load(kind, name):
    """Import REPO/_KIND/NAME.py (KIND: modules or states) as a fresh module object.
    Its directory is on sys.path meanwhile, as Salt's loader has it, for the
    private helpers (_*.py) a module imports."""
    directory = str(REPO / f"_{kind}")
    spec = importlib.util.spec_from_file_location(f"_{kind}_{name}_plain", f"{directory}/{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, directory)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(directory)
    return module


def files_of(kind, virtualname):
    """The names of the REPO/_KIND files that make up VIRTUALNAME.* (Salt's loader merges
    every file declaring that __virtualname__)."""
    declaration = re.compile(rf"^__virtualname__ = \"{re.escape(virtualname)}\"$", re.M)
    return sorted(
        path.stem
        for path in (REPO / f"_{kind}").glob("*.py")
        if not path.name.startswith("_") and declaration.search(path.read_text())
    )


def load_virtual(kind, virtualname):
    """VIRTUALNAME.* as Salt's loader merges it: the public functions of every file
    declaring that __virtualname__, as attributes of one namespace."""
    merged = types.SimpleNamespace()
    for name in files_of(kind, virtualname):
        module = load(kind, name)
        for attr, value in vars(module).items():
            if attr.startswith("_") or not callable(value) or getattr(value, "__module__", None) != module.__name__:
                continue
            if hasattr(merged, attr):
                raise AssertionError(f"{virtualname}.{attr} is defined in more than one file")
            setattr(merged, attr, value)
    return merged

"""load_demo: a script under demos/ imported as a module, for the demo tests.

The demos are scripts, not a package, so the tests load them by path; pyproject's
``pythonpath = ["tests"]`` makes this helper importable from every test folder.
"""
import importlib.util
import sys
from pathlib import Path

DEMOS = Path(__file__).resolve().parents[1] / "demos"


def load_demo(relative: str):
    """demos/<relative> (e.g. "fixed_point.py", "benchmarks/rnn_speed.py") as a module, loaded once."""
    path = DEMOS / relative
    name = "demo_" + path.stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module

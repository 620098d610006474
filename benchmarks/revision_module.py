"""A module of this repository as of a git revision, imported beside today's: what the benchmarks
that time the code before a change against the code now (exact_seek.py, ixml_blank_runs.py) load."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def module_at(rev: str, path: str, name: str) -> ModuleType:
    """The file ``path`` (e.g. ``engine/export.py``) as of ``rev``, imported as the module ``name``
    (registered in sys.modules: its dataclasses look their module up); its own imports are
    today's modules."""
    src = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / f"{name}.py"
        file.write_text(src)
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module

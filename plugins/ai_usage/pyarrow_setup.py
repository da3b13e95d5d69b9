"""pyarrow for an ingest task: imported without its pandas probe.

pyarrow's first conversion of a Python sequence in a process imports pandas, only to ask whether the
sequence is a pandas object: 2-3 s and ~60 MiB in every ingest task, which never uses pandas. Importing
pyarrow through this module runs that once-per-process probe while ``import pandas`` is refused, so
pyarrow takes pandas as absent and converts plain sequences as before; `pandas_ready` turns its pandas
support back on for code that does use pandas (the data-quality tasks), once pandas is imported.
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any

import pyarrow as pa


class _NoPandas(importlib.abc.MetaPathFinder):
    """An import finder that refuses pandas (and only pandas), for `_skip_pandas_probe`."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ImportError(f"{fullname} is not imported during pyarrow's probe")
        return None


def _skip_pandas_probe() -> None:
    if "pandas" in sys.modules:
        return
    blocker = _NoPandas()
    sys.meta_path.insert(0, blocker)
    try:
        pa.array([0], type=pa.int8())
    finally:
        sys.meta_path.remove(blocker)


def pandas_ready() -> None:
    """After the skipped probe, make pyarrow see pandas again (call once pandas is imported)."""
    if "pandas" in sys.modules:
        pa.lib._pandas_api.pd  # noqa: B018  # a pandas-requiring lookup re-runs pyarrow's import of pandas


_skip_pandas_probe()

"""matplotlib for the report and the paper tables: figures written to files, on the Agg backend."""
from __future__ import annotations

from types import ModuleType


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the Agg backend (no display needed). Imported on first use, and seaborn (which imports
    pyplot) only after it: nothing else in the report and the tables needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def seaborn() -> ModuleType:
    """seaborn, with pyplot set up first (`pyplot`)."""
    pyplot()
    import seaborn as sns

    return sns

"""Report plots: matplotlib without a display, and a finished figure as PNG bytes.

Every report module draws with this ``plt`` and ends with :func:`figure_png`, so plots work on
a headless node and a figure is always closed after it is written.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes; must be chosen before pyplot is imported
import matplotlib.pyplot as plt

__all__ = ["figure_png", "plt"]


def figure_png(fig: plt.Figure) -> bytes:
    """The figure laid out tightly, as PNG bytes; the figure is closed."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()

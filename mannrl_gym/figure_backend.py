"""matplotlib's pyplot on the file-only Agg backend, for every figure the package writes
(``mannrl plot``, ``mannrl compare``); one line naming the extra when matplotlib is absent."""

from __future__ import annotations


def pyplot():
    """``matplotlib.pyplot`` with the Agg backend (PNG files, no display needed)."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("figures need matplotlib: pip install 'mannrl-gym[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt

"""remdiag collector: receives agents' streams, stores results and raises proactive tickets."""

__version__ = "0.1.0"

"""FATE's algorithm library (placeholder)."""
__version__ = "1.11.4"

"""FATE-LLM (placeholder)."""
__version__ = "1.2.0"

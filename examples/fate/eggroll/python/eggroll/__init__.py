"""EggRoll's Python client (placeholder)."""

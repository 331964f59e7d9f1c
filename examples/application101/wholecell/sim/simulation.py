"""Runs one cell-cycle simulation (placeholder)."""
import os


def run(seed=0):
    return {"seed": seed, "git": os.environ.get("IMAGE_GIT_HASH", "")}

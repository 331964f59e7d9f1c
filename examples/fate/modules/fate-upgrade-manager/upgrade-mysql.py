"""Upgrades FATE-Flow's MySQL schema between releases (placeholder)."""
import sys

print("upgrade-mysql", " ".join(sys.argv[1:]))

"""Scales FATE-Flow down before an upgrade (placeholder)."""
print("shutdown-flow")

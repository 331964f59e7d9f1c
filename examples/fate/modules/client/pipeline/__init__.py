"""FATE pipeline SDK used from the client's notebooks (placeholder)."""

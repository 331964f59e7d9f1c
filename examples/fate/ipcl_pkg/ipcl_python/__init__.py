"""Intel Paillier Cryptosystem Library bindings (placeholder)."""
__version__ = "1.1.3"

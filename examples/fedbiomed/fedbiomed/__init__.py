"""Fed-BioMed (example package for the Strata example stack)."""
__version__ = "6.3.3"

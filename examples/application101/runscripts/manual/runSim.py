"""Runs a simulation from the command line (placeholder for runscripts/manual/runSim.py)."""
from wholecell.sim.simulation import run

if __name__ == "__main__":
    print(run())

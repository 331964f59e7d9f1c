"""FATE-Flow server (placeholder): prints where it would listen."""
import os

import federatedml

print(f"fate_flow {federatedml.__version__} on {os.environ.get('FATE_FLOW_IP', '0.0.0.0')}:9380")

import os
import sys

import fedbiomed

print(f"fedbiomed {fedbiomed.__version__} component={os.environ.get('FBM_COMPONENT', 'base')} python={sys.version.split()[0]}")

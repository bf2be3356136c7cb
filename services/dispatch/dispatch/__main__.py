"""``python -m dispatch api|worker|migrate|create-token``."""

import sys

from dispatch.bootstrap import SERVICE

if __name__ == "__main__":
    sys.exit(SERVICE.main())

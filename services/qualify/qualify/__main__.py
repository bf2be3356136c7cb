"""``python -m qualify api|worker|migrate|create-token``."""

import sys

from qualify.bootstrap import SERVICE

if __name__ == "__main__":
    sys.exit(SERVICE.main())

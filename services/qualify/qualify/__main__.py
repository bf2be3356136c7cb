"""``python -m qualify api|worker|migrate|create-token``."""

import sys

from qualify.service import SERVICE

if __name__ == "__main__":
    sys.exit(SERVICE.main())

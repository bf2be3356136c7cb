"""``python -m crm api|worker|migrate|create-token``."""

import sys

from crm.bootstrap import SERVICE

if __name__ == "__main__":
    sys.exit(SERVICE.main())

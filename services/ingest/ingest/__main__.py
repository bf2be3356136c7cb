"""``python -m ingest api|worker|migrate|create-token``."""

import sys

from ingest.bootstrap import SERVICE

if __name__ == "__main__":
    sys.exit(SERVICE.main())

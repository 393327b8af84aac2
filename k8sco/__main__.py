"""``python -m k8sco``: the same as the ``k8sco`` console script (used by the local runner
when the script is not installed next to the Python it runs with)."""

import sys

from k8sco._entry import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m xlainspect``: the same command as the ``xlainspect`` script."""

import sys

from xlainspect.cli import main

sys.exit(main())

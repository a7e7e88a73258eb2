"""``python -m xalbench.cli`` = ``xalbench``."""

import sys

from xalbench.cli import main

sys.exit(main())

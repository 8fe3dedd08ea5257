"""``python -m convscope``."""

import sys

from convscope.present.cli import main

sys.exit(main())

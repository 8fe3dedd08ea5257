"""``python -m convscope.present.web [MODEL] [options]``: the ``serve`` command on its own."""

import sys

from convscope.present.cli import app, main
from convscope.present.cli_serve import register

register(app)
sys.exit(main(["serve", *sys.argv[1:]]))

"""``python -m posestream.cli``: the ``posestream`` command."""

import sys

from posestream.cli import main

sys.exit(main())

"""``python -m rnnbp.distributed -n K script.py [args]``: mpiexec -n K with this Python."""
import sys

from .launch import main

sys.exit(main())

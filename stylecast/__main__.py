import sys

from stylecast.cli import main

sys.exit(main())

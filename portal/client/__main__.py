import sys

from portal.client.cli import main

sys.exit(main())

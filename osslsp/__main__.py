import sys

from osslsp.cli import main

sys.exit(main())

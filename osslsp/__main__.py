import sys

from osslsp.cli import main

# Guarded: the indexer's worker processes start by importing the main module.
if __name__ == "__main__":
    sys.exit(main())

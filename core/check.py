"""``python -m core.check <task>``: the contract, the evaluation and the page of one task (core.cli.check)."""

import sys

if __name__ == "__main__":
    from core.cli.check import main

    sys.exit(main())

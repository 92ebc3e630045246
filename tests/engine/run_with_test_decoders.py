"""Entry point for subprocess tests: registers the test decoders, then runs the qa CLI."""

import sys

from tests.helpers import register_test_decoders

if __name__ == "__main__":
    register_test_decoders()
    from qa.cli.main import main

    sys.exit(main(sys.argv[1:]))

import sys

try:  # a Ctrl-C while the CLI imports, before it installs its own handlers: no traceback
    from benchmarks.cli import main
except KeyboardInterrupt:
    print("interrupted by SIGINT during start-up; nothing was written", file=sys.stderr)
    sys.exit(130)

sys.exit(main())

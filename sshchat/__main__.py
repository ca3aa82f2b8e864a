"""`python -m sshchat` runs the same command line as the `sshchat` script."""

from sshchat.cli import main

raise SystemExit(main())

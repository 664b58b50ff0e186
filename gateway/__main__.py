"""`python -m gateway` does what the `ceg` command does."""

from gateway.cli import main

raise SystemExit(main())

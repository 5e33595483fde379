"""`python -m studygpt` 与命令行 `studygpt` 相同 (same as the console script)."""
from studygpt.cli.parser import main

raise SystemExit(main())

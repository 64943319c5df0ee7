"""``python -m spense.cli``: the ``spense`` command."""

from spense.cli import main

main()

"""``python -m spense.cli``: the ``spense`` command."""

from spense.cli import main

if __name__ == "__main__":  # imported (the import check imports every module), it runs nothing
    main()

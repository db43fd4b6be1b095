"""``python -m shatterbox.cli``: the ``shatterbox`` command."""

from shatterbox.cli import main

main()

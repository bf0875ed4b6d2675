"""``python -m stancelab.cli``: the same as the ``stancelab`` console script."""

from stancelab.cli import main

main()

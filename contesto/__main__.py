"""`python -m contesto` is the `contesto` command."""

from contesto._cli import main

main()

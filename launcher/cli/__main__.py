"""``python -m launcher.cli``: the same as the ``ft_launcher`` console script."""

from launcher.cli.entry import console

console()

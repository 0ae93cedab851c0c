"""The command line: torchrun's flags and the ``--ft-*`` ones, their checks, the stop signals, the entry point."""

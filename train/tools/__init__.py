"""Offline tools on a finished run directory: ``python -m train.tools.report RUN_DIR`` (``run_records`` reads the files)."""

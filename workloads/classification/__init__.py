"""Classification on synthetic data: ``models`` (MLP, Conv1dNet) and ``data`` (SyntheticClassification)."""

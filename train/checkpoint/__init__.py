"""Checkpoints: the store on disk (``store``), what a checkpoint holds (``state``), when to save (``checkpointer``), RNG states, the fingerprint."""

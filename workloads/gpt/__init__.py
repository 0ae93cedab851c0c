"""A byte-level language model: ``model`` (GPT), ``text_data`` (ByteWindows), ``objective`` (next token, ppl), ``sampling``."""

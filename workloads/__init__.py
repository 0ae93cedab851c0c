"""The workloads the template ships, kept apart from the loop as a fork's own would be (one folder each).

``classification/``: an MLP and a 1-D conv net on synthetic data (the default run); ``gpt/``: a
byte-level GPT on text with its next-token objective and end-of-run samples. The loop never imports
this package; ``conf/`` names its classes by ``_target_``. A workload may import train's public API.
"""

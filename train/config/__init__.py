"""The training config: the schemas stored in Hydra (``schema``), checks of its numbers, the resolvers ``conf/`` uses."""

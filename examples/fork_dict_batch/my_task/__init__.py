"""A fork's own task, outside the template: dict batches, a model that takes them, an objective with an accuracy."""

"""Pure metric functions (numpy / torch); the classes in :mod:`qa.metrics` wrap them."""

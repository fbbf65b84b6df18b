"""Request and response models, named after openai-python's types."""

"""TensorFlow-only export code (SavedModel signatures with tokenizers inside). Imported explicitly, never by kzoo/__init__."""

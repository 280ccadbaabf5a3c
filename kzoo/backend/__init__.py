"""Backend-specific code, kept out of the layers (which use `keras.ops`).

Each function here dispatches on `keras.backend.backend()` and falls back
to the portable Keras implementation on any backend it has no special
case for.
"""

"""Input pipelines (tf.data, tensorflow-text) and the data kzoo ships; they serve any Keras backend."""

"""kzoo models: one folder per model family; each adds its import lines below."""

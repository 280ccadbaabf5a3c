"""Reference implementations measured in their own optional environment
(`benchmarks/reference-requirements.txt`, `--reference-python`)."""

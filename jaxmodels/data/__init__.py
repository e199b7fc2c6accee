"""Datasets (TFDS builders), sources and input pipelines."""

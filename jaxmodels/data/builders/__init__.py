"""TFDS builders for the datasets jaxmodels generates offline (no download, no TensorFlow).

Each builder lives in its own package folder, as TFDS expects, and registers itself with
TFDS on import, so `tfds.data_source(name)` finds it.
"""

"""The framework comparison of benchmarks/frameworks.py: one module per framework, the cases they share, the report.

Each framework runs in its own worker process (`frameworks.py --worker`), so thread pools and allocators are never
shared and each process's peak memory is its own.
"""

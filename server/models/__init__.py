"""Model helpers: the tiny gpt-oss for CPU tests (tiny.py) and built-in model names (builtin.py)."""

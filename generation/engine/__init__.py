"""Parallel Track's image engine: plates, mattes, colour and generation, free of Django.

Arrays and paths in, arrays and paths out; device, dtype and colour space are explicit.
"""

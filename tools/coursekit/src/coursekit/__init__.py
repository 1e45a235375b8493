"""The course book's own kit: what notebooks and tests use to run the fil rouge.

Not part of the product (``resilia``): it starts and stops local processes, decides
what happens when a tool is missing, and holds other helpers of the book.
"""

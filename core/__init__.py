"""What both apps build on and neither owns: queueing after commit, the one OpenRouter client
and its error type, and image decoding and masks. Imports nothing from catalog or generation.
"""

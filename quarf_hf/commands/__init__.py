"""The ``quarf-hf`` sub-commands, one module each.

Every module exposes ``register(subparsers)``, which adds its parser and sets ``func``; the
work itself lives in the library packages (``hub``, ``training``, ``evaluation``, ...), so a
command module only parses, checks and prints. None of this ships to the Hub.
"""

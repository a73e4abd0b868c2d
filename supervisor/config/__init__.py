"""fnud.toml: its schema (frozen dataclasses, the documentation beside each key), the
parser (file:line errors, no OS calls) and the few settings the thin CLI reads.

May import: common, runtime.
"""

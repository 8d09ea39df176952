"""The self-improvement loop: scan, select, propose, validate, review, apply, learn (graphs/improve.py)."""

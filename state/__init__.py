"""Types shared by every layer: graph states, cards, routing decisions, review payloads."""

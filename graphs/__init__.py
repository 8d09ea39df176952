"""Graph builders, subgraph patterns, the agent registry and its cards, pipeline definitions."""

"""Node functions, routers, tools, prompts, model loading and embeddings."""

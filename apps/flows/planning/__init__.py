"""Flow planning: turning a flow request's natural language into a draft flow.

``rules`` (default) is offline and deterministic; ``llm`` asks an OpenAI-compatible model and falls back to
``rules`` when the model cannot be reached. Both drafts go through the same validator as flows made by hand.
"""

"""Prompts: what the model reads, built from the code around the cursor within a token budget."""

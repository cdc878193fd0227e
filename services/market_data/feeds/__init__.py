"""Feed adapters: anything that yields `FeedTick`s (see base.py)."""

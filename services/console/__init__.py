"""The operator plane: a web page and JSON API over the other planes' contracts, and alerts to a chat."""

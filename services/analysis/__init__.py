"""The analysis plane: signals, performance, range metrics, a pattern book and the allocation policy."""

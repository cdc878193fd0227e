"""The order plane: the single writer of orders and fills.

It takes order intents, guards them with the control flags, runs pre-trade risk,
stores every order before a broker sees it, sends it through a broker adapter
(paper by default) with retries and rate limiting, and streams order events and
fills. The core is `engine.OrderEngine`, a domain engine with ports (store,
broker, flags, positions, clock), so a backtest can run the same code in process
with in-memory ports and a simulated clock.
"""

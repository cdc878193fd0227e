"""The strategies plane: the strategy SDK (`sdk`, `params`, `exits`), the catalogue of
strategies (one module each under `catalogue/`) and the registry that loads one by slug.
Everything here is pure logic: no I/O, no gRPC; the ENTRY/EXIT workers do the wiring."""

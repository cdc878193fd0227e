"""quantmesh services: one package per plane plus the shared base in `common`."""

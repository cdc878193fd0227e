"""The `quantmesh` command line."""

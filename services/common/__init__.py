"""The thin shared base every plane uses: config, server bootstrap, auth, telemetry,
database, clock, streams. Planes import from here and from the generated contracts only."""

"""The same network as Lava processes. Not built yet: see issue 5 (Lava backend)."""

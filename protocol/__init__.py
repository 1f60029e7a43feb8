"""Client/daemon message protocol (to be built: see issue)."""

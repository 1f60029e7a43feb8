"""Background training/sampling daemon (to be built: see issue)."""

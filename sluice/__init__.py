"""Sluice's core: settings, errors, contracts and table schemas (no Beam, no Google Cloud)."""

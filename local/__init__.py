"""The laptop side: the sluice command line, the data generator and the local stack."""

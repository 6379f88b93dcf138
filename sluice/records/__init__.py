"""Records: reading records out of bytes, and typing them by the contract.

The input formats sit behind one seam (``sluice.records.formats``); ``csvscan`` finds CSV
record boundaries, ``parse`` turns record chunks into typed Arrow tables and dead letters,
``splits`` plans parallel byte ranges, ``coerce`` and ``temporal`` type whole columns.
"""

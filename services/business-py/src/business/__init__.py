"""Business services behind the ``business`` Nexus endpoint: orders, refunds, tickets.

Exactly-once refunds: see :mod:`business.store` (the write side) and
:mod:`business.service_handler` (how repeated requests reach the same workflow).
"""

"""The renewal autopilot (``cckit renew``): renew what is due on each site, unattended, only
inside the site's maintenance windows, every attempt in a ledger and a run folder.

Modules: ``policy`` (the site file's ``autopilot:`` block), ``windows`` (window arithmetic),
``due`` (what is due, from the inventory's records), ``estimate`` (how long a renewal takes),
``ledger`` (SQLite), ``runner`` (the one seam to the runbooks), ``renew`` (a pass), ``cli``.
This package's ``__init__`` imports nothing: the site file loader imports ``policy``.
docs/autopilot.md says how to run it and what it guarantees.
"""

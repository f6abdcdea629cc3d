"""The demo hall (``songtao demo``), recorded through the real services wherever a service exists.

What lives where:

- ``build``: the hall, its base and virtual locations, settings, tills, users and stock, and
  ``build()``, which makes the whole demo in order (and ``has_data`` / ``wipe``);
- ``catalogue``: suppliers, categories, products and their certificates;
- ``counters``: the consumption counters and their planograms;
- ``counter_history``: the counters' history over the whole period, sold by the fleet simulator
  (in process at a scaled-down volume, then the last day through the app's counter API), and
  their refill rounds;
- ``history``: the hall's own past — shifts, sales, refunds and restocking;
- ``group_history``: buyer organisations, group purchases in the history and today's open orders;
- ``clock``: local moments of the past, and stamping what the services wrote with them.

May import everything, ``kiosks`` included. Only the CLI (and the tests) import the demo.
"""

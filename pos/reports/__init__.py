"""What the auditor and the manager read, every figure a SQL aggregation of sale and refund lines.

What lives where:

- ``figures``: periods, the one shape of rows every report sums, the labels of channels, and the
  consumption-collaboration statistics (消费帮扶统计);
- ``drilldown``: the sale and refund lines behind a figure;
- ``monthly``: the monthly sales summary and the manager's daily summary;
- ``exports``: the CSV and XLSX downloads of all three (written by ``inventory.spreadsheets``);
- ``views``: the report pages and their downloads; ``api``: the same reports as JSON;
- ``dashboard``: where each role lands, and the manager's dashboard;
- ``upkeep``: the refresh of every alert kind that keeps the dashboard true (``songtao tick`` and
  the server's background thread).

Buyer types are named by ``pos.group.labels`` (the statistics call the canteens' row 机关饭堂团购).

May import everything, ``kiosks`` included (the counters' channel is one of the figures). Nothing
imports the reports but the app factory and the CLI.
"""

"""Group purchases (团购) by unions, firms and canteens: a buyer orders at list or agreed prices,
the goods leave the logistics base and are delivered on account.

What lives where:

- ``models``: the tables (buyers, agreed prices, orders and their lines, picks, deliveries,
  payments);
- ``labels``: what things are called — order statuses, price sources and buyer types (the one
  mapping the pages, printouts, reports and exports use);
- ``buyers``: buyer organisations and their agreed prices;
- ``orders``: entering an order (by hand or from ``order_import``), reserving, picking and
  cancelling, and the order's lock and status checks the other steps share;
- ``delivery``: deliveries (a sale on account through ``pos.sales``), closing the rest, returns
  (a refund of a delivery's sale);
- ``payments``: payments and repayments on account and the balance — delivered − returned −
  paid, one rule (``payments.balance``) for an order, a buyer and all orders;
- ``documents``: what the pages and printouts read (the order page, the delivery note, the list
  of orders with their money);
- ``order_import``: reading a buyer's order spreadsheet into order lines;
- ``views``: the manager's pages, one blueprint (``views.bp``) with ``buyer_pages``,
  ``order_entry``, ``order_page`` and ``common``.

May import: ``pos.core``, ``pos.accounts``, ``pos.sales``, ``pos.models``, ``inventory``. Never
``kiosks``, the hall, the reports or the demo. Used by the reports (a group
delivery is a figure like any sale), the dashboard and the demo.
"""

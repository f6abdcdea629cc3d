"""Payment codes (付款码) taken at the till through WeChat Pay and Alipay, refunds back through
them, and the providers' daily bills (issue 15).

``providers`` is the contract every part codes against: which provider a scanned code belongs
to, the states of a payment and of a refund, and the ``Provider`` interface the two adapters
(``wechat``, ``alipay``) implement. ``fake_gateway`` is the protocol-faithful stand-in for both
services used by the tests, the demo and rehearsals.

The daily bill check (对账): ``bills`` reads and stores the providers' trade bills (``bill_models``),
``bill_files`` writes them in the providers' formats, ``reconcile`` matches a provider's day against
our payments and refunds, ``views`` are its pages.

Layer: pos.payments may import inventory, pos.core, pos.accounts and pos.models; pos.sales,
pos.hall, pos.reports and the CLI may import pos.payments."""

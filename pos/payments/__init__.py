"""Payment codes (付款码) taken at the till through WeChat Pay and Alipay, refunds back through
them, and the providers' daily bills (issue 15).

``providers`` is the contract every part codes against: which provider a scanned code belongs
to, the states of a payment and of a refund, and the ``Provider`` interface the two adapters
(``wechat``, ``alipay``) implement. ``fake_gateway`` is the protocol-faithful stand-in for both
services used by the tests, the demo and rehearsals.

Layer: pos.payments may import inventory, pos.core, pos.accounts and pos.models; pos.sales,
pos.hall, pos.reports and the CLI may import pos.payments."""

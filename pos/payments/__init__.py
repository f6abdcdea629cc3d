"""The hall's payment-code payments (付款码收款) and the daily bill check (对账) against the providers'
trade bills."""

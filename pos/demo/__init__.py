"""The demo hall: locations, catalogue, counters, users (``build``) and a history of sales,
refunds, shifts and group purchases recorded through the real services (``history``).

May import everything, ``kiosks`` included.
"""

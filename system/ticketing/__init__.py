"""The ticketing service: verifies purchase tokens and sells from the stock.

Run it with ``python -m system.ticketing --port P --metrics-port M``. It sells
with DynamoDB transactions, so it scales with the number of tickets, not with
the length of the line.
"""

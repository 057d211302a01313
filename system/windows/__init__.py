"""The window assignment processor: admits fans from the work queue to windows.

Each sale has W ticket-issuing windows, stored in the windows table. The
processor takes fans from the FIFO work queue in queue-number order whenever
one of the sale's windows is free, and frees windows whose fans let them
lapse or whose sale sold out. Every piece of window state lives in DynamoDB,
so a restarted processor continues where the last one stopped.

Run it with ``python -m system.windows``.
"""

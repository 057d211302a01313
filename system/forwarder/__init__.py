"""The forwarder Lambda: numbers new fans and sends them to the work queue."""

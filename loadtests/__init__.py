"""On-sale spike simulations of the queue system with Locust.

``boxoffice spike`` runs them. The fans are light objects that a few Locust
users drive from one timer heap per process, so thousands of waiting fans cost
a few kilobytes each instead of a Locust user each.
"""

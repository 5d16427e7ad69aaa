"""Job and Director messages routed to the destinations of a Messages resource (Bareos)."""

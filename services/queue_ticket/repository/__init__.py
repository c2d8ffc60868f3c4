"""All SQL of the queue service, by domain: offices (configuration), tickets, counters, booking, board."""

"""Domain services: the rules, written once over the storage contract."""

"""Data files shipped with the service: the sample fleet a new store starts with."""

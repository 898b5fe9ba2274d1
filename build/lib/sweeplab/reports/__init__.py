"""What runs leave for people to read: plots, tables, reports."""

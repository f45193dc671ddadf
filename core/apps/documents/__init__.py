"""Documents: PDF forms, printing and mail about a record."""

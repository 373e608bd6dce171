"""Pure domain logic: no I/O, no web or database libraries."""

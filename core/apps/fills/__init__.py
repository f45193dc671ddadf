"""A related field's ``fill``: a record's empty fields filled from the record it links to."""

"""Command line interface (``vqdsr``)."""

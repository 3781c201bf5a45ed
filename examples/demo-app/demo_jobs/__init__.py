"""Sample Python and dataflow jobs of the demo app."""

"""Repair: apply test-time operators to failure units and measure rescue rates."""

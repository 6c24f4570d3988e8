"""Small maintenance scripts for emvtap's shipped data."""

"""Host-side tooling of the Java Card applets: personalisation APDUs built from a card profile
and the CLI that drives the jcardsim bridge."""

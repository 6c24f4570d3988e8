"""The lab: what drives all three actors (terminal, card, switch) - the root CLI, the demo,
the hardware-in-the-loop runner, doctor and the Java Card applet host tooling."""

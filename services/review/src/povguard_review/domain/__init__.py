"""The review procedure, pure: cases folded from events, and the rules that decide which events an action produces."""

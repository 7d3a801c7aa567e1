"""The intake domain, pure: household state folded from events, the rules of the national form, and the decisions
that turn commands into events. No I/O here."""

"""Pure: event facts folded into a household's reporting state; no I/O."""

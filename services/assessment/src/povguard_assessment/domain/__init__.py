"""The pure domain of assessment: fold a household's consumed facts, assess income and risks, propose an outcome,
find data problems and scale risk. No I/O here."""

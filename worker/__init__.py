"""Background work: the dramatiq broker, the actors and the periodic scheduler (DESIGN section 4)."""

"""Active learning: selection strategies, the simulation and its report, suggest/review
pushes, and label-error detection."""

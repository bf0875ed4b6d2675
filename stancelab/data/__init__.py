"""Labelled sentence sets (gold and augmentation) and the folds drawn from them."""

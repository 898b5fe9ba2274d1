"""k-fold cross-validation: folds, the fold loop, its report, refit, the paired test, a sweep objective."""

"""Running experiments: the one ``fit`` path and what each run writes to its folder."""

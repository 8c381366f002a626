"""One yardstick for every generator: observables of shower batches and distances between them."""

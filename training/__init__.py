"""Training of time-to-first-spike SNNs: model, kernels, regularisers, data and trainer."""

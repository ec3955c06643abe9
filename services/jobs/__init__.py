"""The durable job queue and the workers that carry jobs out."""

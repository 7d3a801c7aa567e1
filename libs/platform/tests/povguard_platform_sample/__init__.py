"""A small sample service that exercises every platform mechanism in the platform's own tests: a counter
aggregate ("sample" streams) with an HTTP API, a versioned event with an upcaster, and a projection consumer."""

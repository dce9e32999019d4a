"""Stand-in for awsiotsdk's `awsiot` package (only `greengrasscoreipc`), for the simulated nucleus."""

"""Background workers started by the app's lifespan."""

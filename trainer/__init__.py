"""Training and evaluation of soundsift's language–audio models."""

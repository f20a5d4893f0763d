"""stylecast.training"""

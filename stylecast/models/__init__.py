"""stylecast.models"""

"""stylecast.clients"""

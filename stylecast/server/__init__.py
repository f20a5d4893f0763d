"""stylecast.server"""

"""stylecast.export"""

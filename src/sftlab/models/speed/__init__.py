"""models/speed"""

"""placeholder"""
routes: list = []

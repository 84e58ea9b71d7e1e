"""Helpers shared by the tests: stand-ins for real peers, clocks, data builders."""

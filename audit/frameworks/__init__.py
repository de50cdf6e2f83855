"""The frameworks room: NIST AI RMF 1.0 and crosswalk data files, and the code that joins findings to them."""

"""Synthetic data for parkwatch: cartoon animals, camera shifts, close-up clips, park scenes."""
